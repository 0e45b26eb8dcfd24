/**
 * One inbound call: its INVITE server transaction until answered, then its dialog and RTP session.
 *
 * The application (Parley's session, or a test app) receives the Call from `SipApplication.onCall`, and calls
 * `ring()`, `accept(handler)` or `reject(status)`. After acceptance it may `send()` 8 kHz audio and `hangup()`.
 * `close(reason)` is idempotent and cascades: a BYE (or a final error response before answer), then the RTP
 * session and its ports; the UAS forgets the dialog, and later requests in it get 481.
 */
import { CallStateError, SdpNegotiationError } from "./errors.ts";
import { headerValue, reasonPhrase, serializeResponse, withTag } from "./message.ts";
import { DEFAULT_DTMF_PT, negotiate, type NegotiatedAudio, parseRemoteAudio, writeSdp } from "./sdp.ts";
import type { PortLease } from "./port_allocator.ts";
import { RtpSession } from "./rtp_session.ts";
import type { ServerTransaction } from "./server_transaction.ts";
import type { SessionTimerOffer } from "./session_timer.ts";
import type { CallAudioHandler, CallEndReason, SipPeer, SipRequest } from "./sip_types.ts";
import type { Logger } from "../../lib/log.ts";
import { withTimeout } from "../../lib/with_timeout.ts";

/** Bound on the application's onEnd (it may persist a `bye`); the release goes on after it regardless. */
const ON_END_TIMEOUT_MS = 5_000;

export type CallState = "incoming" | "ringing" | "answering" | "confirmed" | "ended";

/** What a Call needs from the user agent that owns it. */
export interface CallHost {
  readonly localAddress: string;
  readonly localPort: number;
  readonly mediaTimeoutMs: number;
  readonly pacingSamples: number;
  readonly allowHeader: string;
  allocatePorts(): Promise<PortLease>;
  send(bytes: Uint8Array, peer: SipPeer): void;
  /** Sends an in-dialog request (BYE, UPDATE) and resolves with the final status (408 on timeout). */
  request(call: Call, method: "BYE" | "UPDATE", headers: Array<[string, string]>): Promise<number>;
  released(call: Call, reason: CallEndReason): void;
  readonly log: Logger;
}

let nextId = 1;

export class Call {
  readonly id = `sip-${Date.now().toString(36)}-${(nextId++).toString(36)}`;
  readonly localTag = crypto.randomUUID().slice(0, 13);
  readonly callId: string;
  readonly remoteTag: string;
  /** Dialled user part of the Request-URI: the number or extension. */
  readonly user: string;
  readonly fromUri: string;
  readonly toUri: string;
  /** Set when digest authentication succeeded. */
  authenticatedUser?: string;
  state: CallState = "incoming";
  endReason?: CallEndReason;
  localCseq = Math.floor(Math.random() * 10000) + 1;
  remoteCseq: number;
  readonly ended: Promise<CallEndReason>;
  #resolveEnded!: (r: CallEndReason) => void;
  #handler: CallAudioHandler = {};
  #rtp?: RtpSession;
  #lease?: PortLease;
  #negotiated?: NegotiatedAudio;
  #sdpVersion = 1;
  readonly #sdpSession = Math.floor(Math.random() * 1e9);
  #pendingInvite?: { tx: ServerTransaction; offerInAck: boolean; cseq: number };
  #held = false;
  #sessionTimer?: ReturnType<typeof setTimeout>;
  #answerTimer?: ReturnType<typeof setTimeout>;
  #closing?: Promise<void>;

  constructor(
    private readonly host: CallHost,
    readonly invite: SipRequest,
    readonly peer: SipPeer,
    readonly inviteTx: ServerTransaction,
    private readonly sessionTimer: SessionTimerOffer | undefined,
    answerTimeoutMs: number,
  ) {
    this.callId = invite.callId;
    this.remoteTag = invite.fromTag ?? "";
    this.user = invite.uriUser;
    this.fromUri = headerValue(invite.headers, "from") ?? "";
    this.toUri = headerValue(invite.headers, "to") ?? "";
    this.remoteCseq = invite.cseq;
    this.ended = new Promise((r) => (this.#resolveEnded = r));
    this.#pendingInvite = { tx: inviteTx, offerInAck: invite.body.trim() === "", cseq: invite.cseq };
    this.#answerTimer = setTimeout(() => this.close("rejected", 480), answerTimeoutMs);
  }

  get rtp(): RtpSession | undefined {
    return this.#rtp;
  }
  get held(): boolean {
    return this.#held;
  }
  get codec(): "PCMU" | "PCMA" | undefined {
    return this.#negotiated ? (this.#negotiated.payloadType === 0 ? "PCMU" : "PCMA") : undefined;
  }

  /** Headers every response in this dialog carries, copied from the request. */
  #responseHeaders(req: SipRequest): Array<[string, string]> {
    const out: Array<[string, string]> = [];
    for (const [n, v] of req.headers) {
      if (n === "via" || n === "from" || n === "call-id" || n === "cseq" || n === "record-route") {
        out.push([n, v]);
      } else if (n === "to") out.push([n, withTag(v, this.localTag)]);
    }
    return out;
  }

  #contactHeader(): [string, string] {
    const t = this.peer.transport === "tcp" ? ";transport=tcp" : "";
    return ["contact", `<sip:${this.user || "parley"}@${this.host.localAddress}:${this.host.localPort}${t}>`];
  }

  /** Builds and sends a response to a request of this call on the given transaction. */
  respond(tx: ServerTransaction, status: number, extra: Array<[string, string]> = [], body = ""): void {
    const headers = this.#responseHeaders(tx.request);
    if (status >= 180 && status < 300) headers.push(this.#contactHeader());
    headers.push(...extra);
    if (body) headers.push(["content-type", "application/sdp"]);
    tx.respond(status, serializeResponse(status, reasonPhrase(status), headers, body));
  }

  ring(): void {
    if (this.state !== "incoming") return;
    this.state = "ringing";
    this.respond(this.inviteTx, 180);
  }

  /** Answers: allocates RTP ports, negotiates the offer (or makes one), sends 200. */
  async accept(handler: CallAudioHandler = {}): Promise<void> {
    if (this.state !== "incoming" && this.state !== "ringing") {
      throw new CallStateError(`cannot accept a call in state ${this.state}`);
    }
    clearTimeout(this.#answerTimer);
    this.state = "answering";
    this.#handler = handler;
    let body: string;
    try {
      this.#lease = await this.host.allocatePorts();
      if (this.state !== "answering") {
        // CANCEL arrived while ports were being allocated.
        await this.#lease.release();
        return;
      }
      if (this.#pendingInvite!.offerInAck) {
        body = this.#offer("sendrecv");
      } else {
        this.#negotiated = negotiate(parseRemoteAudio(this.invite.body));
        this.#held = this.#negotiated.held;
        this.#startRtp();
        body = this.#answer();
      }
    } catch (e) {
      const status = e instanceof SdpNegotiationError ? 488 : 500;
      this.host.log.warn("sip answer failed", { call: this.id, error: (e as Error).message });
      await this.close("rejected", status);
      return;
    }
    const extra: Array<[string, string]> = [["allow", this.host.allowHeader], ["supported", "timer"]];
    if (this.sessionTimer) {
      extra.push([
        "session-expires",
        `${this.sessionTimer.interval};refresher=${this.sessionTimer.refresher}`,
      ]);
      if (this.sessionTimer.remoteSupportsTimer) extra.push(["require", "timer"]);
      this.#armSessionTimer();
    }
    this.inviteTx.onTimeout = () => {
      if (this.state === "answering") void this.close("ack_timeout");
    };
    this.respond(this.inviteTx, 200, extra, body);
  }

  reject(status = 486): Promise<void> {
    if (status < 300 || status > 699) throw new RangeError("reject needs a 3xx–6xx status");
    return this.close("rejected", status);
  }

  /** Queues 8 kHz audio for the caller (paced 20 ms packets). */
  send(pcm8k: Int16Array): void {
    this.#rtp?.send(pcm8k);
  }

  hangup(): Promise<void> {
    return this.close("local_hangup");
  }

  #offer(direction: "sendrecv"): string {
    return writeSdp({
      address: this.host.localAddress,
      port: this.#lease!.port,
      sessionId: this.#sdpSession,
      version: this.#sdpVersion++,
      payloads: [0, 8],
      dtmfPayloadType: DEFAULT_DTMF_PT,
      direction,
    });
  }

  #answer(): string {
    const n = this.#negotiated!;
    return writeSdp({
      address: this.host.localAddress,
      port: this.#lease!.port,
      sessionId: this.#sdpSession,
      version: this.#sdpVersion++,
      payloads: [n.payloadType],
      dtmfPayloadType: n.dtmfPayloadType,
      direction: n.localDirection,
    });
  }

  #startRtp(): void {
    const n = this.#negotiated!;
    this.#rtp = new RtpSession({
      lease: this.#lease!,
      payloadType: n.payloadType,
      dtmfPayloadType: n.dtmfPayloadType,
      remoteAddress: n.remote.address,
      remotePort: n.remote.port,
      direction: n.localDirection,
      held: n.held,
      mediaTimeoutMs: this.host.mediaTimeoutMs,
      onAudio: (pcm) => this.#handler.onAudio?.(pcm),
      onDtmf: (d, ms) => this.#handler.onDtmf?.(d, ms),
      // The phone's SIP BYE may come only later (or never): release now and BYE its dialog ourselves.
      onRtcpBye: () => void this.#closeWith("remote_hangup", 480, true),
      onMediaTimeout: () => void this.close("media_timeout"),
      onMediaFailure: (why) => {
        this.host.log.error("sip call lost its media", { call: this.id, reason: why });
        void this.close("media_error");
      },
      onNeedAudio: this.#handler.onNeedAudio ? () => this.#handler.onNeedAudio?.() : undefined,
      cname: `parley-${this.id}`,
      recordPacing: this.host.pacingSamples,
    });
  }

  #armSessionTimer(): void {
    clearTimeout(this.#sessionTimer);
    const st = this.sessionTimer;
    if (!st) return;
    if (st.refresher === "uac") {
      const ms = (st.interval - Math.min(32, st.interval / 3)) * 1000;
      this.#sessionTimer = setTimeout(() => void this.close("session_expired"), ms);
    } else if (/\bUPDATE\b/i.test(headerValue(this.invite.headers, "allow") ?? "")) {
      this.#sessionTimer = setTimeout(async () => {
        const status = await this.host.request(this, "UPDATE", [
          ["session-expires", `${st.interval};refresher=uas`],
          ["supported", "timer"],
        ]);
        if (status === 408 || status === 481) void this.close("session_expired");
        else this.#armSessionTimer();
      }, (st.interval * 1000) / 2);
    }
  }

  // ---- requests routed here by the UAS ----

  /** ACK for a 2xx: completes the INVITE (or re-INVITE); an offerless INVITE gets its answer here. */
  onAck(req: SipRequest): void {
    const pending = this.#pendingInvite;
    if (!pending || req.cseq !== pending.cseq) return;
    pending.tx.onAck();
    this.#pendingInvite = undefined;
    if (this.state === "answering") this.state = "confirmed";
    if (!pending.offerInAck) return;
    try {
      if (!req.body.trim()) throw new SdpNegotiationError("ACK carries no answer to our offer");
      const n = negotiate(parseRemoteAudio(req.body));
      const first = !this.#rtp;
      this.#negotiated = n;
      if (first) this.#startRtp();
      else {this.#rtp!.update({
          direction: n.localDirection,
          held: n.held,
          remoteAddress: n.remote.address,
          remotePort: n.remote.port,
        });}
      this.#setHeld(n.held);
    } catch (e) {
      // RFC 3261 13.3.1.4: a UAS that receives no valid answer in the ACK ends the call.
      this.host.log.warn("sip bad answer in ACK", { call: this.id, error: (e as Error).message });
      void this.close("bad_answer");
    }
  }

  /** CANCEL matched the INVITE: 487 to the INVITE unless a final response already went out. */
  onCancel(): boolean {
    if (this.inviteTx.finalSent) return false;
    void this.close("cancelled", 487);
    return true;
  }

  onBye(tx: ServerTransaction): void {
    this.respond(tx, 200);
    void this.close("remote_hangup");
  }

  /** Re-INVITE (hold/unhold, session refresh, new offer), UPDATE refreshes, OPTIONS and INFO keep-alives. */
  onInDialogRequest(req: SipRequest, tx: ServerTransaction): void {
    if (req.method === "INVITE") return this.#onReinvite(req, tx);
    if (req.method === "UPDATE") {
      this.#armSessionTimer();
      const extra: Array<[string, string]> = [];
      if (this.sessionTimer) {
        extra.push([
          "session-expires",
          `${this.sessionTimer.interval};refresher=${this.sessionTimer.refresher}`,
        ]);
      }
      return this.respond(tx, 200, extra);
    }
    if (req.method === "OPTIONS" || req.method === "INFO") {
      return this.respond(tx, 200, [["allow", this.host.allowHeader]]);
    }
    this.respond(tx, 405, [["allow", this.host.allowHeader]]);
  }

  #onReinvite(req: SipRequest, tx: ServerTransaction): void {
    if (this.#pendingInvite) return this.respond(tx, 491);
    if (!this.#lease) return this.respond(tx, 491);
    this.#armSessionTimer();
    const extra: Array<[string, string]> = [["allow", this.host.allowHeader], ["supported", "timer"]];
    if (this.sessionTimer) {
      extra.push([
        "session-expires",
        `${this.sessionTimer.interval};refresher=${this.sessionTimer.refresher}`,
      ]);
    }
    if (!req.body.trim()) {
      this.#pendingInvite = { tx, offerInAck: true, cseq: req.cseq };
      tx.onTimeout = () => (this.#pendingInvite = undefined);
      return this.respond(tx, 200, extra, this.#offer("sendrecv"));
    }
    let n: NegotiatedAudio;
    try {
      n = negotiate(parseRemoteAudio(req.body), this.#negotiated ? [this.#negotiated.payloadType] : [0, 8]);
    } catch {
      // The call continues with the previous session description (RFC 3264 8).
      return this.respond(tx, 488);
    }
    this.#negotiated = n;
    this.#pendingInvite = { tx, offerInAck: false, cseq: req.cseq };
    tx.onTimeout = () => (this.#pendingInvite = undefined);
    if (!this.#rtp) this.#startRtp();
    else {
      this.#rtp.update({
        direction: n.localDirection,
        held: n.held,
        remoteAddress: n.remote.address,
        remotePort: n.remote.port,
      });
    }
    this.#setHeld(n.held);
    this.respond(tx, 200, extra, this.#answer());
  }

  #setHeld(held: boolean): void {
    if (held === this.#held) return;
    this.#held = held;
    this.host.log.info("sip hold", { call: this.id, held });
    this.#handler.onHold?.(held);
  }

  /**
   * Ends the call (idempotent). Before answer: a final error response (`status`, default 480). After answer:
   * a BYE unless the remote ended it. Then the RTP session and ports are released and the UAS forgets the dialog.
   */
  close(reason: CallEndReason = "local_hangup", status = 480): Promise<void> {
    return this.#closeWith(reason, status, false);
  }

  #closeWith(reason: CallEndReason, status: number, forceBye: boolean): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = this.#doClose(reason, status, forceBye);
    return this.#closing;
  }

  async #doClose(reason: CallEndReason, status: number, forceBye: boolean): Promise<void> {
    const wasState = this.state;
    this.state = "ended";
    this.endReason = reason;
    clearTimeout(this.#answerTimer);
    clearTimeout(this.#sessionTimer);
    // Forget the dialog first: from here on, any request in it (BYE retransmission aside) gets 481.
    this.host.released(this, reason);
    this.#resolveEnded(reason);
    // The application hears about the end before any resource goes away.
    try {
      await withTimeout(Promise.resolve(this.#handler.onEnd?.(reason)), ON_END_TIMEOUT_MS);
    } catch (e) {
      this.host.log.error("sip onEnd handler failed", { call: this.id, error: e as Error });
    }
    if (
      wasState === "incoming" || wasState === "ringing" ||
      (wasState === "answering" && !this.inviteTx.finalSent)
    ) {
      this.respond(this.inviteTx, status);
    }
    const remoteEnded = reason === "remote_hangup" || reason === "cancelled" || reason === "rejected";
    const bye = (forceBye || !remoteEnded) && (wasState === "confirmed" || wasState === "answering") &&
      this.inviteTx.finalSent &&
      this.#lease !== undefined;
    await this.#rtp?.close();
    if (!this.#rtp) await this.#lease?.release();
    if (bye) await this.host.request(this, "BYE", []);
  }
}
