/**
 * One phone call as a Parley session (kind `sip`): the transport half of a session whose other half is
 * origin/session/session_core.ts, as session.ts is for WebRTC and stream_session.ts for a WebSocket. The call's
 * audio feeds the speech pipeline, the pipeline's playout goes back as G.711 on the call's RTP clock, DTMF and
 * hold become events, and every event goes through the core's timeline (persisted first, through database
 * outages; followers read it over SSE: a call has no event path of its own).
 *
 * Lifecycle: connecting (ringing, pipeline being built) → active (200 OK sent: row `active`, `state` event,
 * greeting) → closing → closed. Release order, whoever ends it (the caller's BYE or RTCP BYE, DELETE, media
 * timeout, SIGTERM): the core's close (row `closing` → `bye` event persisted → pipeline and playout stopped),
 * then the call is released (our BYE unless the caller hung up; RTP and ports freed; the dialog forgotten, so
 * later requests get 481) → row `closed`. The call waits for the core's steps before it frees anything
 * (CallAudioHandler.onEnd). Media timeouts are the call's (RTP silence), not the core's energy watchdog.
 *
 * With `options.room` (the number's options) the call publishes into the room like a WebRTC session does
 * (through the core): the caller's voice is the room's `speaker` source, Parley's voice its `voice` source,
 * the call's transcripts its captions. It joins before the call is answered and leaves right after the `bye`.
 */
import type { Database } from "../../db/client.ts";
import { ClosedError } from "../../lib/closed_error.ts";
import { log as rootLog, type Logger } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";
import type { CloseReason, SessionOptions } from "../../protocol/session_messages.ts";
import type { SayOptions } from "../pipeline/types.ts";
import type { PipelineFactory } from "../session/session.ts";
import { type RoomPublishing, SessionCore } from "../session/session_core.ts";
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
    case "media_error":
      return { reason: "error", message: "the call's RTP media failed (RTP worker lost)" };
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
  /** The origin's rooms, for a call that publishes into one (`options.room`). */
  rooms?: RoomPublishing;
  onClosed?: (session: SipSession) => void;
}

export class SipSession extends SessionCore {
  readonly kind = "sip" as const;
  readonly call: Call;
  readonly #driver: PulledFrameDriver;
  readonly #inbound: CallInbound;
  readonly #greeting: string | undefined;
  /** Resolves once followers were told (`bye` persisted) and the pipeline stopped: the call may free media. */
  readonly #told = Promise.withResolvers<void>();
  /** Calls' own end (BYE, RTCP BYE, timeout) vs our close: our close releases the call itself. */
  #callEnded = false;

  constructor(init: SipSessionInit) {
    const driver = new PulledFrameDriver();
    super(
      {
        id: init.id,
        tenantId: init.tenantId,
        nodeId: init.nodeId,
        options: init.options,
        database: init.database,
        pipelineFactory: init.pipelineFactory,
        rooms: init.rooms,
        log: (init.log ?? rootLog).child({ call: init.call.id }),
        recordOutboundGaps: init.recordOutboundGaps,
        config: {
          mediaTimeoutMs: Infinity,
          ...(init.closeStepTimeoutMs !== undefined ? { closeStepTimeoutMs: init.closeStepTimeoutMs } : {}),
        },
        onClosed: init.onClosed as ((s: SessionCore) => void) | undefined,
      },
      { sink: new CallOutboundSink((pcm) => init.call.send(pcm)), clock: driver },
      "sip_session",
    );
    this.#driver = driver;
    this.call = init.call;
    this.#greeting = init.greeting?.trim() || undefined;
    this.#inbound = new CallInbound(() => this.now(), (frame) => this.pushFrame(frame));
  }

  protected override hasEventPath(): boolean {
    return false;
  }
  protected eventsOpen(): boolean {
    return false;
  }
  protected sendText(_json: string): void {}
  protected eventsBuffered(): number {
    return 0;
  }
  protected lastEnergyAt(): number {
    return 0;
  }

  /** Build the pipeline, answer the call, go active, speak the greeting. Never throws: failures close. */
  async start(): Promise<void> {
    try {
      this.call.ring();
      try {
        await this.createPipeline();
      } catch (err) {
        if (err instanceof ClosedError) return;
        throw err;
      }
      if (this.call.endReason !== undefined) {
        await this.close("remote_hangup", "caller left before the answer");
        return;
      }
      await this.call.accept({
        onAudio: (pcm) => {
          if (this.state === "active") this.#inbound.push(pcm);
        },
        onDtmf: (digit, durationMs) => {
          dtmfTotal.inc();
          this.emit({ type: "dtmf", digit, duration_ms: Math.round(durationMs) }).catch(() => {});
        },
        onHold: (held) => this.setMuted(held),
        onNeedAudio: () => this.#driver.pull(),
        onEnd: (reason) => this.#onCallEnd(reason),
      });
      if (this.call.endReason !== undefined) return; // the call's own end closes the session
      if (this.isOver()) return;
      this.becomeActive();
      if (this.#greeting) {
        this.pipeline?.say(this.#greeting, { voice: this.options.voice }).catch((err) => {
          if (!this.isOver()) this.log.warn("greeting failed", { err });
        });
      }
      this.log.info("sip session active", { codec: this.call.codec });
    } catch (err) {
      this.log.error("sip session setup failed", { err });
      await this.close("error", "setup failed");
    }
  }

  /** A call speaks only once answered (before that there is no RTP clock to play on). */
  override say(text: string, opts: SayOptions = {}): Promise<void> {
    if (!this.isOver() && this.state !== "active") {
      return Promise.reject(new ClosedError(`session ${this.id} not active`));
    }
    return super.say(text, opts);
  }

  /** The call ended on its own (BYE, RTCP BYE, media timeout, session timer, UAS shutdown). */
  #onCallEnd(reason: CallEndReason): Promise<void> {
    this.#callEnded = true;
    const r = closeReasonOf(reason);
    void this.close(r.reason, r.message);
    return this.#told.promise;
  }

  /** After the bye and the pipeline: let the call free its media; our own end BYEs the caller. */
  protected async releaseTransport(reason: CloseReason | null): Promise<void> {
    this.#told.resolve();
    if (reason) callsClosed.inc({ reason });
    if (!this.#callEnded) await this.call.close("local_hangup");
  }
}
