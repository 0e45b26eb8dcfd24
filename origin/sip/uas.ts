/**
 * The SIP user agent server: transport, transactions, dialogs, access control and the application hook.
 *
 * Request handling order: parse (malformed → 400/513 when the headers allow a response, otherwise a silent
 * drop) → Max-Forwards 0 → 483 → transaction match (retransmissions re-send the last response) → ACK/CANCEL →
 * in-dialog requests (unknown dialog → 481) → OPTIONS → INVITE: loop check (482), Require (420), access
 * (trunk allow-list, else digest 401, else 403), session timer (422), then `app.onCall(call)`.
 * A released dialog is remembered (bounded, for `tombstoneMs`), so a retransmitted INVITE can never start it
 * again: it gets 481.
 */
import { log as rootLog, type Logger } from "../../lib/log.ts";
import { RtpWorker } from "./rtp_worker_host.ts";
import { Call, type CallHost } from "./call.ts";
import { ClientTransaction } from "./client_transaction.ts";
import { type DigestAlgorithm, DigestAuthenticator } from "./digest.ts";
import {
  headerValue,
  headerValues,
  parseMessage,
  reasonPhrase,
  serializeRequest,
  serializeResponse,
  withTag,
} from "./message.ts";
import { PortAllocator, type PortLease } from "./port_allocator.ts";
import { ServerTransaction } from "./server_transaction.ts";
import { negotiateSessionTimer } from "./session_timer.ts";
import { sipMetrics } from "./sip_metrics.ts";
import type {
  CallEndReason,
  CredentialLookup,
  SipApplication,
  SipPeer,
  SipRequest,
  SipResponse,
} from "./sip_types.ts";
import { DEFAULT_TIMERS, type SipTimers } from "./timers.ts";
import { SipTransport } from "./transport.ts";
import { isInAllowList } from "./allow_list.ts";

export const ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO";

export interface SipUasOptions {
  /** Address to bind and to advertise in Contact and SDP. */
  host: string;
  port: number;
  app: SipApplication;
  rtpPortMin: number;
  rtpPortMax: number;
  /** Source addresses (IPv4, or IPv4/prefix) of trunks allowed to call without authentication. */
  trunks?: string[];
  /** Digest credentials; callers not in `trunks` are challenged when set, refused (403) otherwise. */
  credentials?: CredentialLookup;
  realm?: string;
  /** Digest algorithms challenged with, in order (default SHA-256 then MD5, RFC 8760). */
  digestAlgorithms?: DigestAlgorithm[];
  /** Accept calls from anyone (development and tests only). */
  allowAnyone?: boolean;
  mediaTimeoutMs?: number;
  minSessionExpires?: number;
  answerTimeoutMs?: number;
  timers?: Partial<SipTimers>;
  tombstoneMs?: number;
  /** How long close() waits for BYE responses before closing the transport anyway. */
  shutdownGraceMs?: number;
  /** Keep this many outbound packet gaps per call for pacing statistics (0: none). */
  pacingSamples?: number;
  /**
   * The RTP worker that holds every call's RTP sockets and send clock; default one of its own, started on the
   * first call and closed with the UAS (one per origin process).
   */
  rtpWorker?: RtpWorker;
  /** SCHED_FIFO priority for the UAS's own RTP worker thread (0: normal scheduling). Default 10. */
  rtpRealtimePriority?: number;
  log?: Logger;
}

export class SipUas implements CallHost {
  readonly transport: SipTransport;
  readonly ports: PortAllocator;
  readonly log: Logger;
  readonly mediaTimeoutMs: number;
  readonly pacingSamples: number;
  readonly rtpWorker: RtpWorker;
  readonly #ownsRtpWorker: boolean;
  readonly allowHeader = ALLOW;
  readonly #timers: SipTimers;
  readonly #serverTx = new Map<string, ServerTransaction>();
  readonly #clientTx = new Map<string, ClientTransaction>();
  readonly #dialogs = new Map<string, Call>();
  /** Calls still ringing, by INVITE transaction key (for CANCEL) and by call-id+from-tag (for loops). */
  readonly #early = new Map<string, Call>();
  readonly #tombstones = new Map<string, number>();
  readonly #auth?: DigestAuthenticator;
  #closed = false;

  constructor(private readonly o: SipUasOptions) {
    this.log = (o.log ?? rootLog).child({ component: "sip" });
    this.#timers = { ...DEFAULT_TIMERS, ...o.timers };
    this.mediaTimeoutMs = o.mediaTimeoutMs ?? 0;
    this.pacingSamples = o.pacingSamples ?? 0;
    this.#ownsRtpWorker = o.rtpWorker === undefined;
    this.rtpWorker = o.rtpWorker ?? new RtpWorker({ log: this.log, realtimePriority: o.rtpRealtimePriority });
    this.transport = new SipTransport({ host: o.host, port: o.port }, (b, p) => this.#onBytes(b, p));
    this.ports = new PortAllocator(o.host, o.rtpPortMin, o.rtpPortMax, this.rtpWorker);
    if (o.credentials) {
      this.#auth = new DigestAuthenticator(o.realm ?? "parley", o.credentials, 300_000, o.digestAlgorithms);
    }
  }

  get localAddress(): string {
    return this.o.host;
  }
  get localPort(): number {
    return this.transport.port;
  }
  get calls(): Call[] {
    return [...new Set([...this.#dialogs.values(), ...this.#early.values()])].filter((c) =>
      c.state !== "ended"
    );
  }
  get transactionCount(): number {
    return this.#serverTx.size + this.#clientTx.size;
  }

  async listen(): Promise<void> {
    await this.transport.listen();
    this.log.info("sip listening", { host: this.o.host, port: this.transport.port });
  }

  allocatePorts(): Promise<PortLease> {
    return this.ports.allocate();
  }

  send(bytes: Uint8Array, peer: SipPeer): void {
    this.transport.send(bytes, peer);
  }

  #onBytes(bytes: Uint8Array, peer: SipPeer): void {
    if (this.#closed) return;
    try {
      this.#dispatch(bytes, peer);
    } catch (e) {
      // A bug in one message's handling must not take the listener down.
      this.log.error("sip dispatch failed", { error: e as Error });
    }
  }

  #dispatch(bytes: Uint8Array, peer: SipPeer): void {
    const parsed = parseMessage(bytes);
    if (!parsed.ok) {
      sipMetrics.rejectedIn.inc();
      this.log.debug("sip malformed", { reason: parsed.reason, from: peer.address });
      if (parsed.reply) {
        const headers = parsed.reply.headers.map((
          [n, v],
        ): [string, string] => [n, n === "to" ? withTag(v, "bad") : v]);
        this.#sendResponse(parsed.reply.status, headers, peer, [[
          "warning",
          `399 parley "${parsed.reason}"`,
        ]]);
      }
      return;
    }
    const m = parsed.message;
    sipMetrics.messagesIn.inc({ kind: m.kind === "request" ? m.method : "response" });
    if (m.kind === "response") return this.#onResponse(m);
    this.#onRequest(m, peer);
  }

  #sendResponse(
    status: number,
    headers: Array<[string, string]>,
    peer: SipPeer,
    extra: Array<[string, string]> = [],
  ): void {
    sipMetrics.responsesOut.inc({ class: `${Math.floor(status / 100)}xx` });
    this.send(serializeResponse(status, reasonPhrase(status), [...headers, ...extra]), peer);
  }

  #onResponse(res: SipResponse): void {
    const tx = res.via.branch ? this.#clientTx.get(res.via.branch) : undefined;
    tx?.onResponse(res.status);
  }

  #txKey(req: SipRequest): string {
    const method = req.method === "ACK" ? "INVITE" : req.method;
    const b = req.via.branch;
    // RFC 3261 branches are unique; older UAs get a key from the dialog and CSeq (17.2.3).
    if (b && b.startsWith("z9hG4bK")) return `${b}|${req.via.host}:${req.via.port ?? ""}|${method}`;
    return `${req.callId}|${req.fromTag}|${req.cseq}|${method}`;
  }

  #dialogKey(callId: string, remoteTag: string | undefined, localTag: string | undefined): string {
    return `${callId}|${remoteTag ?? ""}|${localTag ?? ""}`;
  }

  #newTx(req: SipRequest, peer: SipPeer, key = this.#txKey(req)): ServerTransaction {
    const tx = new ServerTransaction(key, req, peer, this, this.#timers);
    tx.onTerminated = () => {
      if (this.#serverTx.get(key) === tx) this.#serverTx.delete(key);
    };
    this.#serverTx.set(key, tx);
    return tx;
  }

  /** A stateless-style reply through a fresh transaction (so retransmissions are answered the same). */
  #reply(
    req: SipRequest,
    peer: SipPeer,
    status: number,
    extra: Array<[string, string]> = [],
    toTag = "x",
  ): void {
    const tx = this.#newTx(req, peer);
    const headers: Array<[string, string]> = [];
    for (const [n, v] of req.headers) {
      if (n === "via" || n === "from" || n === "call-id" || n === "cseq") headers.push([n, v]);
      else if (n === "to") headers.push([n, status > 100 ? withTag(v, toTag) : v]);
    }
    sipMetrics.responsesOut.inc({ class: `${Math.floor(status / 100)}xx` });
    tx.respond(status, serializeResponse(status, reasonPhrase(status), [...headers, ...extra]));
  }

  #onRequest(req: SipRequest, peer: SipPeer): void {
    const key = this.#txKey(req);
    if (req.method === "ACK") return this.#onAck(req, key);
    const existing = this.#serverTx.get(key);
    if (existing) return existing.onRetransmission();
    if (req.maxForwards === 0) return this.#reply(req, peer, 483);
    if (req.method === "CANCEL") return this.#onCancel(req, peer);
    if (req.toTag) {
      const call = this.#dialogs.get(this.#dialogKey(req.callId, req.fromTag, req.toTag));
      if (!call) return this.#reply(req, peer, 481);
      if (req.cseq <= call.remoteCseq && req.method !== "ACK") return this.#reply(req, peer, 500);
      call.remoteCseq = req.cseq;
      const tx = this.#newTx(req, peer);
      if (req.method === "BYE") return call.onBye(tx);
      return call.onInDialogRequest(req, tx);
    }
    switch (req.method) {
      case "OPTIONS":
        return this.#reply(req, peer, 200, [["allow", ALLOW], ["accept", "application/sdp"], [
          "supported",
          "timer",
        ]]);
      case "INVITE":
        return void this.#onInvite(req, peer, key);
      case "BYE":
      case "UPDATE":
      case "INFO":
        return this.#reply(req, peer, 481);
      case "REGISTER":
      case "SUBSCRIBE":
      case "NOTIFY":
      case "MESSAGE":
      case "REFER":
      case "PRACK":
      case "PUBLISH":
        return this.#reply(req, peer, 405, [["allow", ALLOW]]);
      default:
        return this.#reply(req, peer, 501, [["allow", ALLOW]]);
    }
  }

  #onAck(req: SipRequest, key: string): void {
    const tx = this.#serverTx.get(key);
    // ACK to a non-2xx shares the INVITE's branch; ACK to a 2xx is a new transaction routed by the dialog.
    if (tx && tx.state === "completed") return tx.onAck();
    const call = this.#dialogs.get(this.#dialogKey(req.callId, req.fromTag, req.toTag));
    call?.onAck(req);
  }

  #onCancel(req: SipRequest, peer: SipPeer): void {
    const inviteKey = this.#txKey({ ...req, method: "INVITE" });
    const call = this.#early.get(inviteKey);
    if (!call) return this.#reply(req, peer, 481);
    this.#reply(req, peer, 200, [], call.localTag);
    call.onCancel();
  }

  async #onInvite(req: SipRequest, peer: SipPeer, key: string): Promise<void> {
    const legKey = `${req.callId}|${req.fromTag}`;
    const tomb = this.#tombstones.get(legKey);
    if (tomb !== undefined) {
      if (Date.now() < tomb) return this.#reply(req, peer, 481);
      this.#tombstones.delete(legKey);
    }
    for (const c of this.#early.values()) {
      // Same call-id/from-tag/CSeq on a different branch: the request looped or forked back (8.2.2.2).
      if (c.callId === req.callId && c.remoteTag === req.fromTag && c.invite.cseq === req.cseq) {
        return this.#reply(req, peer, 482);
      }
    }
    const require = headerValues(req.headers, "require").flatMap((v) => v.split(",")).map((t) =>
      t.trim().toLowerCase()
    )
      .filter((t) => t && t !== "timer");
    if (require.length > 0) return this.#reply(req, peer, 420, [["unsupported", require.join(", ")]]);
    const ctype = headerValue(req.headers, "content-type");
    if (req.body.trim() && ctype && !/^application\/sdp\b/i.test(ctype)) {
      return this.#reply(req, peer, 415, [["accept", "application/sdp"]]);
    }
    const tx = this.#newTx(req, peer, key);
    let authUser: string | undefined;
    if (!this.o.allowAnyone && !isInAllowList(peer.address, this.o.trunks ?? [])) {
      if (!this.#auth) {
        this.#serverTx.delete(key);
        return this.#reply(req, peer, 403);
      }
      const result = await this.#auth.verify(req);
      if (this.#closed) return;
      if (!result.ok) {
        this.#serverTx.delete(key);
        this.log.info("sip auth challenge", { from: peer.address, reason: result.reason });
        return this.#reply(req, peer, 401, this.#auth.challenge(result.stale));
      }
      authUser = result.username;
    }
    const st = negotiateSessionTimer(req, this.o.minSessionExpires ?? 90);
    if (st.kind === "too_small") {
      this.#serverTx.delete(key);
      return this.#reply(req, peer, 422, [["min-se", String(st.minSe)]]);
    }
    const call = new Call(
      this,
      req,
      peer,
      tx,
      st.kind === "ok" ? st.offer : undefined,
      this.o.answerTimeoutMs ?? 30_000,
    );
    call.authenticatedUser = authUser;
    this.#early.set(key, call);
    this.#dialogs.set(this.#dialogKey(call.callId, call.remoteTag, call.localTag), call);
    sipMetrics.calls.inc();
    call.respond(tx, 100);
    this.log.info("sip call", {
      call: call.id,
      user: call.user,
      from: peer.address,
      transport: peer.transport,
    });
    tx.onTerminated = () => {
      if (this.#serverTx.get(key) === tx) this.#serverTx.delete(key);
      if (this.#early.get(key) === call) this.#early.delete(key);
    };
    try {
      await this.o.app.onCall(call);
    } catch (e) {
      this.log.error("sip app onCall threw", { call: call.id, error: e as Error });
      await call.close("rejected", 500);
    }
  }

  /** Dialog-forgetting hook from Call.close(). */
  released(call: Call, reason: CallEndReason): void {
    const dk = this.#dialogKey(call.callId, call.remoteTag, call.localTag);
    if (this.#dialogs.get(dk) === call) {
      this.#dialogs.delete(dk);
      sipMetrics.calls.dec();
      sipMetrics.callsEnded.inc({ reason });
    }
    this.#tombstones.set(`${call.callId}|${call.remoteTag}`, Date.now() + (this.o.tombstoneMs ?? 300_000));
    if (this.#tombstones.size > 10_000) this.#tombstones.delete(this.#tombstones.keys().next().value!);
    this.log.info("sip call ended", { call: call.id, reason });
  }

  request(call: Call, method: "BYE" | "UPDATE", extra: Array<[string, string]>): Promise<number> {
    if (this.#closed) return Promise.resolve(408);
    const branch = `z9hG4bK${crypto.randomUUID().replaceAll("-", "")}`;
    const proto = call.peer.transport === "tcp" ? "TCP" : "UDP";
    const target = call.invite.contact ?? headerValue(call.invite.headers, "from")?.match(/<([^>]+)>/)?.[1] ??
      call.invite.uri;
    const routes = headerValues(call.invite.headers, "record-route");
    const headers: Array<[string, string]> = [
      ["via", `SIP/2.0/${proto} ${this.o.host}:${this.transport.port};branch=${branch};rport`],
      ["max-forwards", "70"],
      ["from", withTag(call.toUri, call.localTag)],
      ["to", call.fromUri],
      ["call-id", call.callId],
      ["cseq", `${++call.localCseq} ${method}`],
      ...routes.map((r): [string, string] => ["route", r]),
      ["user-agent", "Parley"],
      ...extra,
    ];
    // In-dialog requests go back to where the dialog's INVITE came from (symmetric signalling, NAT-safe).
    const tx = new ClientTransaction(
      branch,
      serializeRequest(method, target, headers),
      call.peer,
      this,
      this.#timers,
    );
    this.#clientTx.set(branch, tx);
    tx.onTerminated = () => this.#clientTx.delete(branch);
    tx.start();
    return tx.done.finally(() => this.#clientTx.delete(branch));
  }

  /** BYE to every call, then stop listening, release every port and close the RTP worker. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    const calls = this.calls;
    // Every call is released and sent its BYE at once; a dead peer's BYE transaction (up to 64·T1) must not
    // hold up a shutdown, so the wait is bounded and closing the transactions settles what is left.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(calls.map((c) => c.close("shutdown", 503))),
      new Promise((r) => (timer = setTimeout(r, this.o.shutdownGraceMs ?? 2000))),
    ]);
    clearTimeout(timer);
    this.#closed = true;
    for (const tx of this.#serverTx.values()) tx.close();
    for (const tx of this.#clientTx.values()) tx.close();
    this.#serverTx.clear();
    this.#clientTx.clear();
    await this.transport.close();
    if (this.#ownsRtpWorker) await this.rtpWorker.close();
  }
}
