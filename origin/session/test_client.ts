/**
 * A real wrtc client peer for tests and benches (same process as the origin is fine: wrtc stays in the main
 * isolate). It does what a Parley client must: create the `events` and `control` data channels BEFORE the offer,
 * add an audio track fed from a 10 ms clock (a tone, or silence), gather all candidates, offer, apply the answer.
 * It records every event, the energy of the audio it receives, and releases everything in `close()` (sink and
 * track stopped, or the process would hang).
 *
 * `UdpRelay` sits between client and server on 127.0.0.1 so a test can cut the network (drop every packet)
 * without either side closing anything: that is how ICE disconnection/failure is forced.
 */
import { demoteSendStreamThreads } from "./wrtc_threads.ts";
import dgram from "node:dgram";
import type { ServerEvent } from "../../protocol/session_messages.ts";
import {
  ensureKeepalive,
  type MediaStreamTrack,
  PEER_CONFIG,
  type RTCAudioSink,
  RTCAudioSink as AudioSink,
  type RTCAudioSource,
  RTCAudioSource as AudioSource,
  type RTCDataChannel,
  type RTCPeerConnection,
  RTCPeerConnection as PeerConnection,
  waitIceGathering,
} from "./wrtc.ts";
import { peakOf } from "./inbound_audio.ts";

export type ClientAudio = "tone" | "silence" | "off" | "pcm";

export class TestClient {
  readonly pc: RTCPeerConnection;
  readonly events: RTCDataChannel;
  readonly control: RTCDataChannel;
  readonly received: ServerEvent[] = [];
  readonly #source: RTCAudioSource;
  readonly #track: MediaStreamTrack;
  #sink: RTCAudioSink | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #phase = 0;
  #closed = false;
  #waiters: Array<() => void> = [];
  audio: ClientAudio;
  /** Frames received with peak above 500 (the echoed tone), and total frames received. */
  loudFrames = 0;
  receivedFrames = 0;
  eventsOpen = false;
  eventsClosed = false;

  /** For audio "pcm": 48 kHz mono samples played once from the first frame, then silence. */
  #pcm: Int16Array | undefined;
  #pcmPos = 0;
  /** performance.now() at which the first pcm frame was handed to the source. */
  pcmStartedAt: number | undefined;
  /** With `record`: the received audio (mono, at `recordedRate`) since the last `takeRecording()`. */
  #recorded: Int16Array[] | null;
  recordedRate = 48000;

  constructor(opts: { audio?: ClientAudio; pcm48k?: Int16Array; record?: boolean } = {}) {
    this.#pcm = opts.pcm48k;
    this.#recorded = opts.record ? [] : null;
    ensureKeepalive();
    this.audio = opts.audio ?? "tone";
    this.pc = new PeerConnection(PEER_CONFIG);
    this.events = this.pc.createDataChannel("events");
    this.control = this.pc.createDataChannel("control");
    this.events.onopen = () => {
      this.eventsOpen = true;
      this.#wake();
    };
    this.events.onclose = () => {
      this.eventsClosed = true;
      this.#wake();
    };
    this.events.onmessage = (ev) => {
      this.received.push(JSON.parse(String(ev.data)));
      this.#wake();
    };
    this.#source = new AudioSource();
    this.#track = this.#source.createTrack();
    this.pc.addTrack(this.#track);
    this.pc.ontrack = (ev) => {
      if (ev.track.kind !== "audio" || this.#sink) return;
      this.#sink = new AudioSink(ev.track);
      this.#sink.ondata = (d) => {
        this.receivedFrames++;
        if (this.#recorded) {
          this.recordedRate = d.sampleRate;
          const ch = d.channelCount ?? 1;
          // the sink reuses its buffer: copy (first channel only)
          this.#recorded.push(
            ch === 1
              ? d.samples.slice()
              : Int16Array.from({ length: d.samples.length / ch }, (_, i) => d.samples[i * ch]),
          );
        }
        if (peakOf(d.samples) > 500) this.loudFrames++;
      };
    };
    this.pc.onconnectionstatechange = () => this.#wake();
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** Resolve when `pred` holds (re-checked on every event/state change and every 20 ms). */
  waitFor(pred: () => boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
    return new Promise((resolve, reject) => {
      const t0 = performance.now();
      const check = () => {
        if (pred()) {
          clearInterval(iv);
          resolve();
        } else if (performance.now() - t0 > timeoutMs) {
          clearInterval(iv);
          reject(new Error(`timed out waiting for ${what}`));
        } else this.#waiters.push(check);
      };
      const iv = setInterval(check, 20);
      check();
    });
  }

  waitForEvent<T extends ServerEvent["type"]>(
    type: T,
    pred: (e: Extract<ServerEvent, { type: T }>) => boolean = () => true,
    timeoutMs = 5000,
  ): Promise<Extract<ServerEvent, { type: T }>> {
    const find = () =>
      this.received.find((e) => e.type === type && pred(e as Extract<ServerEvent, { type: T }>)) as
        | Extract<ServerEvent, { type: T }>
        | undefined;
    return this.waitFor(() => !!find(), timeoutMs, `event ${type}`).then(() => find()!);
  }

  /** Create the offer after full ICE gathering. */
  async offer(): Promise<string> {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    await waitIceGathering(this.pc, 3000);
    this.#startAudio();
    return this.pc.localDescription!.sdp;
  }

  /** Play 48 kHz mono samples once from the next frame (then silence), replacing what was playing. */
  play(pcm48k: Int16Array): void {
    this.#pcm = pcm48k;
    this.#pcmPos = 0;
    this.audio = "pcm";
  }

  async accept(answerSdp: string): Promise<void> {
    await this.pc.setRemoteDescription({ type: "answer", sdp: answerSdp });
    // The client's send threads would otherwise run real-time and starve the server under test on one machine.
    demoteSendStreamThreads();
  }

  send(msg: unknown): void {
    this.control.send(typeof msg === "string" ? msg : JSON.stringify(msg));
  }

  #startAudio(): void {
    const frame = new Int16Array(480);
    this.#timer = setInterval(() => {
      if (this.audio === "off") return;
      if (this.audio === "pcm") {
        this.pcmStartedAt ??= performance.now();
        frame.fill(0);
        const pcm = this.#pcm ?? new Int16Array();
        const n = Math.max(0, Math.min(480, pcm.length - this.#pcmPos));
        frame.set(pcm.subarray(this.#pcmPos, this.#pcmPos + n));
        this.#pcmPos += n;
      } else if (this.audio === "tone") {
        for (let i = 0; i < 480; i++) {
          frame[i] = Math.round(8000 * Math.sin(this.#phase));
          this.#phase += 2 * Math.PI * 440 / 48000;
        }
      } else frame.fill(0);
      this.#source.onData({ samples: frame, sampleRate: 48000 });
    }, 10);
  }

  /** The audio received since the last call (requires `record`), and starts a new recording. */
  takeRecording(): Int16Array {
    if (!this.#recorded) throw new Error("TestClient was created without record: true");
    const parts = this.#recorded;
    this.#recorded = [];
    const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  /** Release everything (idempotent). Abrupt: no bye is sent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#track.stop();
    this.#sink?.stop();
    this.events.onmessage = this.events.onopen = this.events.onclose = null;
    this.pc.onconnectionstatechange = null;
    this.pc.ontrack = null;
    this.pc.close();
    this.#wake();
  }
}

/** Keep only IPv4 loopback host candidates and point them at `port`. */
function rewriteCandidates(sdp: string, port: number): string {
  return sdp.split("\r\n")
    .filter((l) => !l.startsWith("a=candidate") || / 127\.0\.0\.1 \d+ typ host/.test(l))
    .map((l) => l.startsWith("a=candidate") ? l.replace(/ 127\.0\.0\.1 \d+ /, ` 127.0.0.1 ${port} `) : l)
    .join("\r\n");
}

function loopbackPort(sdp: string): number {
  const m = sdp.match(/a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host/);
  if (!m) throw new Error("no 127.0.0.1 host candidate");
  return Number(m[1]);
}

/** A UDP relay on 127.0.0.1 between one client and one server; `cut()` drops everything from then on. */
export class UdpRelay {
  #sock = dgram.createSocket("udp4");
  #clientPort = 0;
  #serverPort = 0;
  #dropping = false;
  port = 0;

  async open(): Promise<void> {
    await new Promise<void>((r) => this.#sock.bind(0, "127.0.0.1", () => r()));
    this.port = this.#sock.address().port;
    this.#sock.on("message", (msg: Uint8Array, rinfo: { port: number }) => {
      if (this.#dropping) return;
      if (rinfo.port === this.#clientPort) this.#sock.send(msg, this.#serverPort, "127.0.0.1");
      else if (rinfo.port === this.#serverPort) this.#sock.send(msg, this.#clientPort, "127.0.0.1");
    });
  }

  /** Client offer → what the server should see (client reachable only through the relay). */
  offer(sdp: string): string {
    this.#clientPort = loopbackPort(sdp);
    return rewriteCandidates(sdp, this.port);
  }

  /** Server answer → what the client should see. */
  answer(sdp: string): string {
    this.#serverPort = loopbackPort(sdp);
    return rewriteCandidates(sdp, this.port);
  }

  cut(): void {
    this.#dropping = true;
  }

  close(): void {
    try {
      this.#sock.close();
    } catch { /* closed */ }
  }
}
