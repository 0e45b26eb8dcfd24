/**
 * A WHEP-style listener client for tests and benches (same process as the origin is fine: wrtc stays in the
 * main isolate): a recvonly audio transceiver and the `events` data channel, created before the offer; full ICE
 * gathering; the answer applied. It records every event, and per received 48 kHz frame its arrival time, RMS
 * and which marker tone (if any) dominates it (Goertzel at the frequencies given), so tests can tell which
 * source a listener hears and when it changed. `close()` stops the sink and closes the peer (idempotent).
 */
import type { ListenerEvent } from "../../protocol/room_messages.ts";
import {
  ensureKeepalive,
  PEER_CONFIG,
  type RTCAudioSink,
  RTCAudioSink as AudioSink,
  type RTCDataChannel,
  type RTCPeerConnection,
  RTCPeerConnection as PeerConnection,
  waitIceGathering,
} from "../session/wrtc.ts";
import { rms } from "./frame_math.ts";

/** Power of one frequency in a frame (Goertzel), normalised by length. */
export function tonePower(samples: Int16Array, freq: number, rate = 48_000): number {
  const w = 2 * Math.PI * freq / rate, c = 2 * Math.cos(w);
  let s1 = 0, s2 = 0;
  for (let i = 0; i < samples.length; i++) {
    const s0 = samples[i] + c * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return (s1 * s1 + s2 * s2 - c * s1 * s2) / (samples.length * samples.length);
}

/** A sine frame generator with continuous phase. */
export class Tone {
  #phase = 0;
  readonly #frame = new Int16Array(480);
  constructor(readonly freq: number, readonly amplitude = 8000) {}
  next(): Int16Array {
    const step = 2 * Math.PI * this.freq / 48_000;
    for (let i = 0; i < 480; i++) {
      this.#frame[i] = Math.round(this.amplitude * Math.sin(this.#phase));
      this.#phase += step;
    }
    this.#phase %= 2 * Math.PI;
    return this.#frame;
  }
}

export interface ReceivedFrame {
  at: number;
  rms: number;
  /** Index into `markers` of the dominant tone, or -1 (none clearly dominant / quiet). */
  tone: number;
}

export class ListenerClient {
  readonly pc: RTCPeerConnection;
  readonly events: RTCDataChannel;
  readonly received: ListenerEvent[] = [];
  readonly frames: ReceivedFrame[] = [];
  readonly markers: number[];
  #sink: RTCAudioSink | undefined;
  #closed = false;
  eventsOpen = false;
  eventsClosed = false;
  loudFrames = 0;
  receivedFrames = 0;
  /** Largest gap between two sink callbacks (ms), after the first `warmupFrames`. */
  maxGapMs = 0;
  readonly gapsMs: number[] = [];
  #lastAt = 0;
  readonly #keepFrames: boolean;
  /** Copies of every received 48 kHz frame, when asked for (transcribing what a listener heard). */
  readonly samples: Int16Array[] | undefined;

  constructor(opts: { markers?: number[]; keepFrames?: boolean; keepSamples?: boolean } = {}) {
    ensureKeepalive();
    this.markers = opts.markers ?? [];
    this.#keepFrames = opts.keepFrames ?? true;
    this.samples = opts.keepSamples ? [] : undefined;
    this.pc = new PeerConnection(PEER_CONFIG);
    this.pc.addTransceiver("audio", { direction: "recvonly" });
    this.events = this.pc.createDataChannel("events");
    this.events.onopen = () => this.eventsOpen = true;
    this.events.onclose = () => this.eventsClosed = true;
    this.events.onmessage = (ev) => this.received.push(JSON.parse(String(ev.data)));
    this.pc.ontrack = (ev) => {
      if (ev.track.kind !== "audio" || this.#sink) return;
      this.#sink = new AudioSink(ev.track);
      this.#sink.ondata = (d) => this.#onData(d.samples, d.sampleRate);
    };
  }

  #onData(samples: Int16Array, rate: number): void {
    const at = performance.now();
    this.receivedFrames++;
    if (this.#lastAt > 0 && this.receivedFrames > 10) {
      const gap = at - this.#lastAt;
      this.gapsMs.push(gap);
      if (gap > this.maxGapMs) this.maxGapMs = gap;
    }
    this.#lastAt = at;
    const r = rms(samples);
    if (r > 300) this.loudFrames++;
    if (!this.#keepFrames || rate !== 48_000) return;
    this.samples?.push(samples.slice());
    let tone = -1;
    if (r > 300 && this.markers.length) {
      const p = this.markers.map((f) => tonePower(samples, f));
      const best = p.indexOf(Math.max(...p));
      const total = p.reduce((a, b) => a + b, 0);
      if (p[best] > 0.8 * total) tone = best;
    }
    this.frames.push({ at, rms: r, tone });
  }

  /** Offer after full gathering. */
  async offer(): Promise<string> {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    await waitIceGathering(this.pc, 3000);
    return this.pc.localDescription!.sdp;
  }

  async accept(answer: string): Promise<void> {
    await this.pc.setRemoteDescription({ type: "answer", sdp: answer });
  }

  /** Packets and payload bytes received on the audio stream so far (the peer's inbound-rtp stats). */
  async inboundAudio(): Promise<{ packets: number; bytes: number }> {
    let packets = 0, bytes = 0;
    (await this.pc.getStats()).forEach((r) => {
      if (r.type === "inbound-rtp" && (r.kind === "audio" || r.mediaType === "audio")) {
        packets += Number(r.packetsReceived ?? 0);
        bytes += Number(r.bytesReceived ?? 0);
      }
    });
    return { packets, bytes };
  }

  select(source: string): void {
    this.events.send(JSON.stringify({ type: "select", source }));
  }

  /** First frame at or after `since` whose dominant tone is `tone` (index into markers). */
  firstTone(tone: number, since: number, run = 3): ReceivedFrame | undefined {
    for (let i = 0; i + run <= this.frames.length; i++) {
      const f = this.frames[i];
      if (f.at < since) continue;
      let ok = true;
      for (let j = 0; j < run && ok; j++) ok = this.frames[i + j].tone === tone;
      if (ok) return f;
    }
    return undefined;
  }

  /** `what` names the condition in the timeout error (a function: evaluated then, to show the state). */
  async waitFor(
    pred: () => boolean,
    timeoutMs = 5000,
    what: string | (() => string) = "condition",
  ): Promise<void> {
    const t0 = performance.now();
    while (!pred()) {
      if (performance.now() - t0 > timeoutMs) {
        throw new Error(`timed out waiting for ${typeof what === "function" ? what() : what}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sink?.stop();
    if (this.#sink) this.#sink.ondata = null;
    this.events.onmessage = this.events.onopen = this.events.onclose = null;
    this.pc.ontrack = null;
    this.pc.close();
  }
}
