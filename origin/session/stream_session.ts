/**
 * One live session carried by a WebSocket (`GET /v1/listen`, relayed by the edge): the transport half of a
 * session whose other half is session_core.ts, exactly as session.ts is for WebRTC. Binary frames are audio
 * (stream_inbound.ts), text frames are control messages, events go out as text frames and synthesized speech as
 * binary frames (stream_outbound.ts).
 *
 * A stream is active as soon as it starts (there is no media negotiation): `start()` builds the pipeline,
 * marks the row active, replays missed events on resume, and only then reads the socket. The edge sends no
 * client frame before the first event it receives, so nothing is read before the pipeline exists.
 *
 * Closing: a violation of the stream's rules (ListenViolation) ends the session with reason `error`, the
 * rule in the bye message and the violation's close code; the socket closing from the other side is
 * `client_hangup`; `origin_shutdown` closes with 1001; every other end closes with 1000 after the bye.
 */
import {
  closeReason,
  LISTEN_CLOSE,
  type ListenCloseCode,
  ListenViolation,
  MAX_SAMPLE_RATE,
} from "../../protocol/listen.ts";
import type { CloseReason } from "../../protocol/session_messages.ts";
import { registry } from "../../lib/metrics.ts";
import { SessionCore, type SessionInit } from "./session_core.ts";
import { StreamInbound } from "./stream_inbound.ts";
import { StreamOutboundSink } from "./stream_outbound.ts";

const violations = registry.counter(
  "parley_stream_violations_total",
  "WebSocket stream sessions closed for breaking a stream rule, by close code",
);
const inboundBytes = registry.counter("parley_stream_inbound_bytes_total", "Audio bytes received on streams");

export interface StreamSessionInit extends SessionInit {
  socket: WebSocket;
  /** From the query; a WAV header may set it instead. */
  sampleRate?: number;
}

export class StreamSession extends SessionCore {
  readonly kind = "websocket" as const;
  readonly #socket: WebSocket;
  readonly #inbound: StreamInbound;
  readonly #sink: { current: StreamOutboundSink | undefined };
  #closeCode: ListenCloseCode = LISTEN_CLOSE.normal;
  #closeText = "";

  constructor(init: StreamSessionInit) {
    // Synthesized speech goes out at the stream's rate; until a WAV header told it, at the highest rate.
    const sink = { current: undefined as StreamOutboundSink | undefined, rate: () => MAX_SAMPLE_RATE };
    const send = (pcm: Uint8Array) => {
      if (init.socket.readyState === WebSocket.OPEN) init.socket.send(pcm);
    };
    super(init, {
      sink: { onData: (d) => (sink.current ??= new StreamOutboundSink(sink.rate(), send)).onData(d) },
      skipIdleFrames: true,
    }, "stream_session");
    sink.rate = () => this.#inbound.sampleRate ?? MAX_SAMPLE_RATE;
    this.#sink = sink;
    this.#socket = init.socket;
    this.#socket.binaryType = "arraybuffer";
    this.#inbound = new StreamInbound({
      sampleRate: init.sampleRate,
      now: () => this.now(),
      energyThreshold: this.config.energyThreshold,
      onFrame: (frame) => this.pushFrame(frame),
    });
    this.outbound.onPlayout((e) => {
      if (e.phase === "finished") this.#sink.current?.flush();
    });
    this.#socket.onclose = (ev) => this.guard(() => this.#onSocketClosed(ev.code, ev.reason));
    this.#socket.onerror = () => {};
  }

  get inbound(): StreamInbound {
    return this.#inbound;
  }

  protected eventsOpen(): boolean {
    return this.#socket.readyState === WebSocket.OPEN;
  }
  protected sendText(json: string): void {
    this.#socket.send(json);
  }
  protected eventsBuffered(): number {
    return this.#socket.bufferedAmount;
  }
  protected lastEnergyAt(): number {
    return this.#inbound.lastEnergyAt;
  }

  /** Build the pipeline, go active and live, then read the socket. Rejects (and closes) if that fails. */
  async start(): Promise<void> {
    try {
      await this.createPipeline();
    } catch (err) {
      await this.close("error", "setup failed");
      throw err;
    }
    if (this.#socket.readyState === WebSocket.CONNECTING) {
      await new Promise<void>((resolve) => {
        this.#socket.onopen = () => resolve();
        this.closed.then(() => resolve());
      });
      this.#socket.onopen = null;
    }
    if (this.isOver()) return;
    if (this.#socket.readyState !== WebSocket.OPEN) {
      await this.close("client_hangup", "the stream closed before it started");
      return;
    }
    this.becomeActive();
    this.goLive();
    this.#socket.onmessage = (ev) => this.guard(() => this.#onMessage(ev.data));
    this.log.info("stream session active", { sample_rate: this.#inbound.sampleRate ?? null });
  }

  #onMessage(data: unknown): void {
    if (this.isOver()) return;
    if (typeof data === "string") {
      // Audio must be binary: a text frame that is not even a JSON object is a client sending samples as text.
      if (!/^\s*\{/.test(data)) {
        this.#violate(
          new ListenViolation(
            LISTEN_CLOSE.unsupportedData,
            "text frame is not a JSON control message; send audio as binary frames",
          ),
        );
        return;
      }
      this.onControl(data);
      return;
    }
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : data as Uint8Array;
    inboundBytes.inc(undefined, bytes.length);
    try {
      this.#inbound.push(bytes);
    } catch (err) {
      if (err instanceof ListenViolation) this.#violate(err);
      else throw err;
    }
  }

  #violate(v: ListenViolation): void {
    violations.inc({ code: String(v.code) });
    this.log.info("stream rule broken", { code: v.code, reason: v.message });
    this.closeWith(v.code, v.message, "error");
  }

  /** End with a specific WebSocket close code (the bye carries the same message). */
  closeWith(code: ListenCloseCode, message: string, reason: CloseReason): Promise<void> {
    if (!this.isOver()) {
      this.#closeCode = code;
      this.#closeText = message;
    }
    return this.close(reason, message);
  }

  #onSocketClosed(code: number, reason: string): void {
    if (this.isOver()) return;
    // The edge closes with a rule's code when it refused a frame itself (frame size, slow client).
    if (code === LISTEN_CLOSE.tooBig || code === LISTEN_CLOSE.policy) {
      violations.inc({ code: String(code) });
      this.closeWith(code, `closed by the edge (${code}): ${reason}`, "error").catch(() => {});
      return;
    }
    this.close("client_hangup", "the stream was closed").catch(() => {});
  }

  protected releaseTransport(reason: CloseReason | null, message?: string): void {
    this.#socket.onmessage = this.#socket.onclose = null;
    if (reason === null) {
      // Detached for a resume elsewhere: this socket is the old, probably dead one.
      this.#closeCode = LISTEN_CLOSE.goingAway;
      this.#closeText = "session resumed on another connection";
    } else if (this.#closeCode === LISTEN_CLOSE.normal) {
      if (reason === "origin_shutdown") this.#closeCode = LISTEN_CLOSE.goingAway;
      // An end for a reason of our own (a handler failed, setup failed), not a rule the client broke.
      if (reason === "error") this.#closeCode = LISTEN_CLOSE.internal;
      this.#closeText = message ? `${reason}: ${message}` : reason;
    }
    try {
      if (this.#socket.readyState <= WebSocket.OPEN) {
        this.#socket.close(this.#closeCode, closeReason(this.#closeText));
      }
    } catch { /* already closing */ }
  }
}
