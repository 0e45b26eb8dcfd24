/**
 * One WHEP-style listener of a room on the origin: a recvonly client's peer. It owns its RTCPeerConnection,
 * an RTCAudioSource and the track made from it (sent to the client), the client-created `events` data channel
 * (room events out, `select` control messages in), and its timers; `close(reason)` releases all of it, once.
 *
 * The listener does not decide what it plays: the room's controller hands it one frame per tick
 * (`pushFrame`), which goes straight to the source. It measures the gap between consecutive frames it was
 * handed (`parley_room_listener_send_gap_seconds`), the listener-side view of the room clock's pacing.
 *
 * Negotiation follows the session's (origin/session/session.ts): validate the offer (origin/session/sdp.ts),
 * apply it, add the track, answer, wait for host-candidate gathering (non-trickle), answer with every
 * candidate. The offer must carry an audio m-line (the client's recvonly transceiver) and the data channel
 * section (its `events` channel, created before the offer).
 */
import { ApiError } from "../../lib/errors.ts";
import { registry } from "../../lib/metrics.ts";
import { FRAME_SAMPLES, SAMPLE_RATE } from "../session/outbound_audio.ts";
import { validateOffer } from "../session/sdp.ts";
import { demoteSendStreamThreads } from "../session/wrtc_threads.ts";
import {
  closePeer,
  type MediaStreamTrack,
  PEER_CONFIG,
  type RTCAudioSource,
  RTCAudioSource as AudioSource,
  type RTCDataChannel,
  type RTCPeerConnection,
  RTCPeerConnection as PeerConnection,
  waitIceGathering,
} from "../session/wrtc.ts";
import { ListenerCore, type ListenerCoreInit } from "./listener_core.ts";
import { type OpusSendParams, shapeOpusOffer } from "./opus_profile.ts";
import type { FrameSink } from "./room_types.ts";

export { DEFAULT_LISTENER_CONFIG, type ListenerConfig } from "./listener_core.ts";

const sendGap = registry.histogram(
  "parley_room_listener_send_gap_seconds",
  "Gap between consecutive frames handed to a room listener's RTCAudioSource",
  [0.002, 0.005, 0.008, 0.0095, 0.0105, 0.012, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25],
);

export interface ListenerInit extends ListenerCoreInit {
  /** Shape this listener's Opus encoder (the room's audio profile); undefined = as the client offered. */
  opus?: OpusSendParams;
  /**
   * Set libwebrtc's real-time send-stream threads of this process to SCHED_OTHER once this listener's
   * stream exists (origin/session/wrtc_threads.ts). Default true.
   */
  demoteThreads?: boolean;
}

export class Listener extends ListenerCore implements FrameSink {
  readonly #opus: OpusSendParams | undefined;
  readonly #demoteThreads: boolean;
  readonly #source: RTCAudioSource;
  readonly #track: MediaStreamTrack;
  #pc: RTCPeerConnection | undefined;
  #channel: RTCDataChannel | undefined;
  #lastFrameAt = 0;

  constructor(init: ListenerInit) {
    super(init);
    this.#opus = init.opus;
    this.#demoteThreads = init.demoteThreads ?? true;
    this.#source = new AudioSource();
    this.#track = this.#source.createTrack();
  }

  /** Exposed for leak tests: after close the track is ended and the peer closed. */
  get trackState(): MediaStreamTrack["readyState"] {
    return this.#track.readyState;
  }
  get peerState(): string {
    return this.#pc?.connectionState ?? "none";
  }

  /** Negotiate. Resolves with the answer SDP; rejects with ApiError 400 for a bad offer (the listener closes). */
  async start(offerSdp: string): Promise<string> {
    this.beginStart();
    const t0 = performance.now();
    try {
      validateOffer(offerSdp);
      const pc = new PeerConnection(PEER_CONFIG);
      this.#pc = pc;
      pc.ondatachannel = (ev) => this.guard(() => this.#onDataChannel(ev.channel));
      pc.onconnectionstatechange = () => this.guard(() => this.#onConnectionState());
      pc.oniceconnectionstatechange = () => this.guard(() => this.onIceState(this.#pc?.iceConnectionState));
      try {
        const sdp = this.#opus ? shapeOpusOffer(offerSdp, this.#opus) : offerSdp;
        await pc.setRemoteDescription({ type: "offer", sdp });
      } catch (err) {
        throw new ApiError(400, "bad_request", `SDP offer rejected: ${(err as Error).message ?? err}`);
      }
      if (this.isClosed) throw new ApiError(409, "conflict", "listener closed during setup");
      pc.addTrack(this.#track);
      await pc.setLocalDescription(await pc.createAnswer());
      if (this.#demoteThreads) demoteSendStreamThreads();
      const complete = await waitIceGathering(pc, this.config.iceGatherTimeoutMs);
      return this.answerReady(pc.localDescription?.sdp, complete, t0);
    } catch (err) {
      this.setupFailed(err);
    }
  }

  #onDataChannel(ch: RTCDataChannel): void {
    if (this.isClosed || ch.label !== "events" || this.#channel) {
      ch.close();
      return;
    }
    this.#channel = ch;
    ch.onopen = () => this.guard(() => this.events.attach(ch));
    ch.onclose = () => this.guard(() => this.close("client_hangup"));
    ch.onmessage = (ev) => this.guard(() => this.onControl(ev.data));
    if (ch.readyState === "open") this.events.attach(ch);
  }

  #onConnectionState(): void {
    const s = this.#pc?.connectionState;
    if (this.isClosed) return;
    if (s === "connected") {
      // The encoder's thread starts with the media: demote it too.
      if (this.markConnected() && this.#demoteThreads) demoteSendStreamThreads();
    } else if (s === "failed") this.close("ice_failed");
  }

  /** FrameSink: one 10 ms frame from the room's tick. */
  pushFrame(samples: Int16Array): void {
    if (this.isClosed) return;
    const t = performance.now();
    if (this.#lastFrameAt > 0) {
      const gap = t - this.#lastFrameAt;
      sendGap.observe(gap / 1000);
      if (gap > this.maxGapMs) this.maxGapMs = gap;
      this.gapsMs?.push(gap);
    }
    this.#lastFrameAt = t;
    this.frames++;
    this.#source.onData({
      samples,
      sampleRate: SAMPLE_RATE,
      bitsPerSample: 16,
      channelCount: 1,
      numberOfFrames: FRAME_SAMPLES,
    });
    const spent = performance.now() - t;
    this.onDataMs += spent;
    if (spent > this.onDataMaxMs) this.onDataMaxMs = spent;
  }

  /** Source track, data channel, peer. */
  protected releasePeer(): void {
    try {
      this.#track.stop();
    } catch { /* already stopped */ }
    closePeer(this.#pc, [this.#channel]);
  }
}
