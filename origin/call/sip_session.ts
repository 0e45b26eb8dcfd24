/**
 * One phone call as a Parley session (kind `sip`): the call's audio feeds the speech pipeline, the pipeline's
 * playout goes back as G.711 on the call's RTP clock, DTMF and hold become events, and every event goes
 * through the same SessionTimeline as a WebRTC session (persisted first; followers read it over SSE).
 *
 * Lifecycle: connecting (ringing, pipeline being built) → active (200 OK sent: row `active`, `state` event,
 * greeting) → closing → closed. Release order, whoever ends it (the caller's BYE or RTCP BYE, DELETE, media
 * timeout, SIGTERM): row `closing` → `bye` event persisted → pipeline and playout stopped → the call released
 * (our BYE unless the caller hung up; RTP and ports freed; the dialog forgotten, so later requests get 481)
 * → row `closed`. The call waits for the first three steps before it frees anything (CallAudioHandler.onEnd).
 */
import type { Database } from "../../db/client.ts";
import { markActive, markClosed, markClosing } from "../../db/sessions.ts";
import { ClosedError } from "../../lib/closed_error.ts";
import { log as rootLog, type Logger } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";
import { withTimeout } from "../../lib/with_timeout.ts";
import type { SessionSummary } from "../../protocol/internal_api.ts";
import type {
  CloseReason,
  ServerEventBody,
  SessionOptions,
  SessionState,
} from "../../protocol/session_messages.ts";
import type { PipelineHost, SayOptions, SpeechPipeline } from "../pipeline/types.ts";
import type { LiveSession } from "../session/live_session.ts";
import { PacedOutboundAudio } from "../session/outbound_audio.ts";
import type { PipelineFactory } from "../session/session.ts";
import { SessionTimeline } from "../session/session_timeline.ts";
import type { Call } from "../sip/call.ts";
import type { CallEndReason } from "../sip/sip_types.ts";
import { CallInbound } from "./call_inbound.ts";
import { CallOutboundSink, PulledFrameDriver } from "./call_outbound.ts";

const callsClosed = registry.counter(
  "parley_sip_sessions_closed_total",
  "Phone-call sessions closed, by reason",
);
const dtmfTotal = registry.counter("parley_sip_dtmf_total", "DTMF digits received on phone-call sessions");

/** How a call's end maps onto the session close reasons. */
export function closeReasonOf(reason: CallEndReason): { reason: CloseReason; message?: string } {
  switch (reason) {
    case "remote_hangup":
      return { reason: "remote_hangup" };
    case "media_timeout":
      return { reason: "media_timeout", message: "no RTP from the caller" };
    case "shutdown":
      return { reason: "origin_shutdown" };
    case "session_expired":
      return { reason: "media_timeout", message: "SIP session timer expired without refresh" };
    case "local_hangup":
      return { reason: "client_hangup" };
    default:
      return { reason: "error", message: `call ended: ${reason}` };
  }
}

export interface SipSessionInit {
  id: string;
  tenantId: string;
  nodeId: string;
  options: SessionOptions;
  /** Spoken once the call is answered (empty/undefined: none). */
  greeting?: string | null;
  call: Call;
  database: Database;
  pipelineFactory: PipelineFactory;
  log?: Logger;
  /** Bound on each database step of a close. Default 5 s. */
  closeStepTimeoutMs?: number;
  /** Keep every outbound frame gap in memory (pacing benchmark). */
  recordOutboundGaps?: boolean;
  onClosed?: (session: SipSession) => void;
}

export class SipSession implements PipelineHost, LiveSession {
  readonly kind = "sip" as const;
  readonly id: string;
  readonly sessionId: string;
  readonly tenantId: string;
  readonly nodeId: string;
  readonly call: Call;
  readonly outbound: PacedOutboundAudio;
  readonly #driver = new PulledFrameDriver();
  readonly #timeline: SessionTimeline;
  readonly #inbound: CallInbound;
  readonly #db: Database;
  readonly #log: Logger;
  readonly #init: SipSessionInit;
  #options: SessionOptions;
  #state: SessionState = "connecting";
  #reason: CloseReason | null = null;
  #pipeline: SpeechPipeline | undefined;
  #activePerf: number | undefined;
  readonly #createdPerf = performance.now();
  #closing: Promise<void> | undefined;
  /** Resolves once followers were told (`bye` persisted) and the pipeline stopped: the call may free media. */
  readonly #told = Promise.withResolvers<void>();
  readonly #closedSignal = Promise.withResolvers<void>();
  /** Calls' own end (BYE, RTCP BYE, timeout) vs our close: our close releases the call itself. */
  #callEnded = false;

  constructor(init: SipSessionInit) {
    this.#init = init;
    this.id = this.sessionId = init.id;
    this.tenantId = init.tenantId;
    this.nodeId = init.nodeId;
    this.call = init.call;
    this.#options = init.options;
    this.#db = init.database;
    this.#log = (init.log ?? rootLog).child({
      component: "sip_session",
      session_id: init.id,
      call: init.call.id,
    });
    this.#timeline = new SessionTimeline(this.#db, this.id);
    const sink = new CallOutboundSink((pcm) => this.call.send(pcm));
    this.outbound = new PacedOutboundAudio({
      source: sink,
      now: () => this.now(),
      clock: this.#driver,
      recordGaps: init.recordOutboundGaps,
    });
    this.#inbound = new CallInbound(() => this.now(), (frame) => {
      const p = this.#pipeline;
      if (p && p.state === "running" && this.#state === "active") p.push(frame);
    });
  }

  get state(): SessionState {
    return this.#state;
  }
  get reason(): CloseReason | null {
    return this.#reason;
  }
  get options(): SessionOptions {
    return this.#options;
  }
  get pipeline(): SpeechPipeline | undefined {
    return this.#pipeline;
  }
  get closed(): Promise<void> {
    return this.#closedSignal.promise;
  }

  now(): number {
    return performance.now() - (this.#activePerf ?? this.#createdPerf);
  }

  summary(): SessionSummary {
    return { session_id: this.id, state: this.#state, reason: this.#reason, node_id: this.nodeId };
  }

  #isOver(): boolean {
    return this.#state === "closing" || this.#state === "closed";
  }

  /** Build the pipeline, answer the call, go active, speak the greeting. Never throws: failures close. */
  async start(): Promise<void> {
    try {
      this.call.ring();
      const pipeline = await this.#init.pipelineFactory(this, this.#options);
      if (this.#isOver() || this.call.endReason !== undefined) {
        await pipeline.close();
        if (!this.#isOver()) await this.close("remote_hangup", "caller left before the answer");
        return;
      }
      this.#pipeline = pipeline;
      await this.call.accept({
        onAudio: (pcm) => {
          if (this.#state === "active") this.#inbound.push(pcm);
        },
        onDtmf: (digit, durationMs) => {
          dtmfTotal.inc();
          this.emit({ type: "dtmf", digit, duration_ms: Math.round(durationMs) }).catch(() => {});
        },
        onHold: (held) => {
          this.#pipeline?.setMuted(held);
          this.#emitState({ muted: held }).catch(() => {});
        },
        onNeedAudio: () => this.#driver.pull(),
        onEnd: (reason) => this.#onCallEnd(reason),
      });
      if (this.call.endReason !== undefined) return; // the call's own end closes the session
      this.#becomeActive();
    } catch (err) {
      this.#log.error("sip session setup failed", { err });
      await this.close("error", "setup failed");
    }
  }

  #becomeActive(): void {
    if (this.#isOver()) return;
    this.#state = "active";
    this.#activePerf = performance.now();
    this.outbound.start();
    markActive(this.#db, this.id)
      .catch((err) => this.#log.warn("mark active failed", { err }))
      .finally(() => this.#emitState().catch(() => {}));
    const greeting = this.#init.greeting?.trim();
    if (greeting) {
      this.#pipeline?.say(greeting, { voice: this.#options.voice }).catch((err) => {
        if (!this.#isOver()) this.#log.warn("greeting failed", { err });
      });
    }
    this.#log.info("sip session active", { codec: this.call.codec });
  }

  #emitState(extra: { muted?: boolean } = {}): Promise<number> {
    return this.emit({
      type: "state",
      state: this.#state,
      session_id: this.id,
      node_id: this.nodeId,
      muted: extra.muted ?? this.call.held,
      options: this.#options,
    });
  }

  /** PipelineHost.emit: persisted before anyone can read it. Rejects with ClosedError once closing. */
  emit(event: ServerEventBody): Promise<number> {
    if (this.#isOver()) return Promise.reject(new ClosedError(`session ${this.id}`));
    return this.#timeline.append(event);
  }

  say(text: string, opts: SayOptions = {}): Promise<void> {
    if (this.#isOver()) return Promise.reject(new ClosedError(`session ${this.id}`));
    const p = this.#pipeline;
    if (!p || this.#state !== "active") {
      return Promise.reject(new ClosedError(`session ${this.id} not active`));
    }
    return p.say(text, opts);
  }

  /** The call ended on its own (BYE, RTCP BYE, media timeout, session timer, UAS shutdown). */
  #onCallEnd(reason: CallEndReason): Promise<void> {
    this.#callEnded = true;
    const r = closeReasonOf(reason);
    void this.close(r.reason, r.message);
    return this.#told.promise;
  }

  /** End the session (idempotent, never throws): bye first, then media, then the row. */
  close(reason: CloseReason, message?: string): Promise<void> {
    this.#closing ??= this.#release(reason, message);
    return this.#closing;
  }

  async #release(reason: CloseReason, message?: string): Promise<void> {
    this.#state = "closing";
    this.#reason = reason;
    const bound = this.#init.closeStepTimeoutMs ?? 5_000;
    const step = async (what: string, fn: () => unknown) => {
      try {
        await withTimeout(Promise.resolve().then(fn), bound, what);
      } catch (err) {
        this.#log.warn(`close step failed: ${what}`, { err: String(err) });
      }
    };
    await step("mark closing", () => markClosing(this.#db, this.id, reason));
    await step("bye", () => this.#timeline.append({ type: "bye", reason, ...(message ? { message } : {}) }));
    const pipeline = this.#pipeline;
    this.#pipeline = undefined;
    if (pipeline) await step("pipeline close", () => pipeline.close());
    this.outbound.close();
    this.#told.resolve();
    // Our own end: BYE the caller, free RTP and ports. (A call that ended itself does this once we resolved.)
    if (!this.#callEnded) await step("call close", () => this.call.close("local_hangup"));
    await step("mark closed", () => markClosed(this.#db, this.id, reason));
    this.#state = "closed";
    callsClosed.inc({ reason });
    this.#log.info("sip session closed", { reason, message });
    try {
      this.#init.onClosed?.(this);
    } catch (err) {
      this.#log.warn("onClosed callback failed", { err });
    }
    this.#closedSignal.resolve();
  }
}
