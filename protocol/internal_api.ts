/**
 * Edge → origin internal API (signed, see internal_auth.ts). Paths and bodies defined once here.
 *
 *   POST   /internal/sessions          CreateSessionRequest → 201 CreateSessionResponse
 *                                      503 (draining / at capacity): the origin did NOT accept; edge may retry elsewhere
 *                                      4xx: the offer/options are bad; edge returns the error as is
 *   DELETE /internal/sessions/:id?reason=client_hangup|admin   → 200 SessionSummary (idempotent; 404 if unknown here)
 *   GET    /internal/sessions/:id      → 200 SessionSummary | 404
 *   POST   /internal/sessions/:id/say  SayRequest → 202 SessionSummary | 404 unknown here | 409 closing
 */
import type { CloseReason, SessionOptions, SessionState } from "./session_messages.ts";

export const INTERNAL_SESSIONS_PATH = "/internal/sessions";

export interface CreateSessionRequest {
  session_id: string;
  tenant_id: string;
  sdp: string;
  options: SessionOptions;
  /** Resume: the session already exists; continue its event seq after this one. */
  resume_after_seq?: number;
}

export interface CreateSessionResponse {
  session_id: string;
  node_id: string;
  sdp: string;
}

export interface SessionSummary {
  session_id: string;
  state: SessionState;
  reason?: CloseReason | null;
  node_id: string;
}
