/**
 * Types shared by the SIP layers: parsed messages, transport addresses and the application interface that a
 * Parley session (or a test app) implements to take calls.
 */
import type { Call } from "./call.ts";

export type SipTransportKind = "udp" | "tcp";

/** Where a message came from (or goes to). `connectionId` names the TCP connection it arrived on. */
export interface SipPeer {
  transport: SipTransportKind;
  address: string;
  port: number;
  connectionId?: number;
}

/** The parts of the top Via a UAS needs to route responses and match transactions. */
export interface SipVia {
  transport: string;
  host: string;
  port?: number;
  branch?: string;
  rport?: number | null;
  received?: string;
}

interface SipMessageBase {
  /** Header values in arrival order, names in lower case and compact forms expanded. */
  headers: Array<[string, string]>;
  body: string;
  callId: string;
  cseq: number;
  cseqMethod: string;
  fromTag?: string;
  toTag?: string;
  via: SipVia;
}

export interface SipRequest extends SipMessageBase {
  kind: "request";
  method: string;
  uri: string;
  /** The user part of the Request-URI (the dialled number or extension). */
  uriUser: string;
  maxForwards: number;
  /** Remote target from Contact, if any. */
  contact?: string;
}

export interface SipResponse extends SipMessageBase {
  kind: "response";
  status: number;
  reason: string;
}

export type SipMessage = SipRequest | SipResponse;

/** Parse outcome: a message, or a reason with (when the request is salvageable) a response to send. */
export type ParseResult =
  | { ok: true; message: SipMessage }
  | {
    ok: false;
    reason: string;
    reply?: { status: number; reason: string; headers: Array<[string, string]> };
  };

/** Handler a call is accepted with: decoded 8 kHz audio in 20 ms frames, DTMF digits, hold changes. */
export interface CallAudioHandler {
  onAudio?(pcm8k: Int16Array): void;
  onDtmf?(digit: string, durationMs: number): void;
  onHold?(held: boolean): void;
  /**
   * Called once when the call ends, before its RTP session and ports are released and before our BYE: a
   * returned promise is awaited (bounded), so the application can tell its own followers first.
   */
  onEnd?(reason: CallEndReason): void | Promise<void>;
  /** The send clock wants audio (less than one packet queued): queue some with `call.send()` now. */
  onNeedAudio?(): void;
}

/** Why a call ended. */
export type CallEndReason =
  | "remote_hangup"
  | "local_hangup"
  | "cancelled"
  | "rejected"
  | "media_timeout"
  | "ack_timeout"
  | "session_expired"
  | "bad_answer"
  /** The RTP worker died (crash or hang): the call had no media any more. */
  | "media_error"
  | "shutdown";

/** What Parley (or a test) plugs into the UAS. Called once per new INVITE that passed access control. */
export interface SipApplication {
  onCall(call: Call): void | Promise<void>;
}

/** Credential lookup for digest authentication: the password (or the precomputed HA1) for user@realm. */
export type CredentialLookup = (
  username: string,
  realm: string,
) => Promise<{ password: string } | { ha1: { md5?: string; sha256?: string } } | null>;
