/**
 * What the SessionManager needs from any live session, whatever carries its media (a WebRTC peer in
 * session.ts, a phone call in origin/call/sip_session.ts): its ids, a summary, `say`, and one idempotent
 * close(reason) that tells followers (`bye`) before it frees anything.
 */
import type { SayOptions } from "../pipeline/types.ts";
import type { SessionSummary } from "../../protocol/internal_api.ts";
import type { CloseReason, SessionKind } from "../../protocol/session_messages.ts";

export interface LiveSession {
  readonly id: string;
  readonly tenantId: string;
  readonly kind: SessionKind;
  summary(): SessionSummary;
  /** Speak text on the session (REST `say`). Rejects with ClosedError once closing. */
  say(text: string, opts?: SayOptions): Promise<void>;
  /** Idempotent; never throws. */
  close(reason: CloseReason, message?: string): Promise<void>;
  /** Resolves once closed. */
  readonly closed: Promise<void>;
}
