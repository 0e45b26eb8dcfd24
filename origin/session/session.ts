/**
 * One live WebRTC session on the origin: the transport half of a session (session_core.ts holds the rest). It
 * owns the RTCPeerConnection, the inbound RTCAudioSink, the outbound RTCAudioSource + track and the two data
 * channels, and releases them in the core's close order (outbound track → inbound sink → data channels → peer
 * connection).
 *
 * Data channels: created by the CLIENT before it makes its offer (so they are negotiated in the offer's
 * m=application section and the server never renegotiates): label `events` (server → client, JSON
 * ServerEvent with `seq`) and `control` (client → server, JSON ControlMessage). The server only handles
 * `ondatachannel`, attaching its handlers at once (before the handshake finishes, so `open` is never missed).
 * Channels with other labels are closed.
 *
 * Lifecycle: connecting → active (peer connected) → closing → closed. WebRTC close reasons: client_hangup (`bye`
 * on control, the peer closing its data channels, or DELETE through the manager), ice_failed (ICE/DTLS failed,
 * or not connected within connectTimeoutMs), ice_disconnected_timeout (ICE disconnected longer than
 * iceDisconnectedGraceMs); media_timeout, origin_shutdown, admin and error come from the core.
 */
import { demoteSendStreamThreads } from "./wrtc_threads.ts";
import { ApiError } from "../../lib/errors.ts";
import { ClosedError } from "../../lib/closed_error.ts";
import { registry } from "../../lib/metrics.ts";
import type { CloseReason } from "../../protocol/session_messages.ts";
import { InboundAudio } from "./inbound_audio.ts";
import { SessionCore, type SessionInit } from "./session_core.ts";
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
} from "./wrtc.ts";

export {
  DEFAULT_SESSION_CONFIG,
  type PipelineFactory,
  type RoomPublishing,
  type SessionConfig,
  type SessionInit,
} from "./session_core.ts";

const setupSeconds = registry.histogram(
  "parley_session_setup_seconds",
  "Origin: offer received → answer ready (ICE gathering complete)",
);
const connectSeconds = registry.histogram(
  "parley_session_connect_seconds",
  "Origin: answer ready → peer connected",
);

export class Session extends SessionCore {
  readonly kind = "webrtc" as const;
  /** ms from start() to answer, and from answer to connected (metrics, benches). */
  setupMs: number | undefined;
  connectMs: number | undefined;

  #started = false;
  #pc: RTCPeerConnection | undefined;
  #source: RTCAudioSource;
  #track: MediaStreamTrack | undefined;
  #inbound: InboundAudio | undefined;
  #events: RTCDataChannel | undefined;
  #control: RTCDataChannel | undefined;

  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  #answeredPerf: number | undefined;

  constructor(init: SessionInit) {
    const source = new AudioSource();
    super(init, { sink: source }, "session");
    this.#source = source;
  }

  get inbound(): InboundAudio | undefined {
    return this.#inbound;
  }

  protected eventsOpen(): boolean {
    return this.#events?.readyState === "open";
  }
  protected sendText(json: string): void {
    this.#events!.send(json);
  }
  protected eventsBuffered(): number {
    return this.#events?.bufferedAmount ?? 0;
  }
  protected lastEnergyAt(): number {
    return this.#inbound?.lastEnergyAt ?? 0;
  }

  /**
   * Negotiate: apply the client's offer, add the outbound track, create the answer and wait for ICE gathering
   * to complete (non-trickle: the answer carries every host candidate). Returns the answer SDP.
   * Rejects with ApiError 400 when the offer is refused by WebRTC; the session is then closed (`error`).
   */
  async start(offerSdp: string): Promise<string> {
    if (this.isOver()) throw new ClosedError(`session ${this.id}`);
    if (this.#started) throw new Error("session already started");
    this.#started = true;
    const t0 = performance.now();
    try {
      const pc = new PeerConnection(PEER_CONFIG);
      this.#pc = pc;
      pc.ondatachannel = (ev) => this.guard(() => this.#onDataChannel(ev.channel));
      pc.ontrack = (ev) => this.guard(() => this.#onTrack(ev.track));
      pc.onconnectionstatechange = () => this.guard(() => this.#onConnectionState());
      pc.oniceconnectionstatechange = () => this.guard(() => this.#onIceState());
      this.#track = this.#source.createTrack();

      await this.createPipeline();

      try {
        await pc.setRemoteDescription({ type: "offer", sdp: offerSdp });
      } catch (err) {
        throw new ApiError(400, "bad_request", `SDP offer rejected: ${(err as Error).message ?? err}`);
      }
      if (this.isOver()) throw new ClosedError(`session ${this.id}`);
      pc.addTrack(this.#track);
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      const complete = await waitIceGathering(pc, this.config.iceGatherTimeoutMs);
      if (this.isOver()) throw new ClosedError(`session ${this.id}`);
      if (!complete) this.log.warn("ICE gathering incomplete at timeout; answering with what we have");
      const sdp = pc.localDescription?.sdp;
      if (!sdp) throw new Error("no local description after gathering");
      // libwebrtc made this peer's send-stream threads real-time; give the CPU back to the media clock.
      demoteSendStreamThreads();
      this.#answeredPerf = performance.now();
      this.setupMs = this.#answeredPerf - t0;
      setupSeconds.observe(this.setupMs / 1000);
      this.#connectTimer = setTimeout(() => {
        if (this.state === "connecting") {
          this.close("ice_failed", `not connected within ${this.config.connectTimeoutMs} ms`);
        }
      }, this.config.connectTimeoutMs);
      return sdp;
    } catch (err) {
      if (!this.isOver()) {
        const isClientError = err instanceof ApiError && err.status < 500;
        this.log[isClientError ? "info" : "error"]("session setup failed", { err });
      }
      await this.close("error", "setup failed");
      if (err instanceof ApiError || err instanceof ClosedError) throw err;
      throw new ApiError(500, "internal", "session setup failed");
    }
  }

  #onDataChannel(ch: RTCDataChannel): void {
    if (this.isOver()) {
      ch.close();
      return;
    }
    if (ch.label === "events" && !this.#events) {
      this.#events = ch;
      ch.onopen = () => this.guard(() => this.goLive());
      ch.onclose = () => this.guard(() => this.#onPeerChannelClosed("events"));
      ch.onmessage = null;
      if (ch.readyState === "open") this.goLive();
    } else if (ch.label === "control" && !this.#control) {
      this.#control = ch;
      ch.onmessage = (ev) => this.guard(() => this.onControl(ev.data));
      ch.onclose = () => this.guard(() => this.#onPeerChannelClosed("control"));
    } else {
      this.log.info("closing unexpected data channel", { label: ch.label });
      ch.close();
    }
  }

  #onPeerChannelClosed(label: string): void {
    // Our own close() detaches handlers first, so reaching here means the peer closed it (SCTP reset/abort):
    // the client hung up (a network loss does not close channels; ICE handles that path).
    if (this.isOver()) return;
    this.close("client_hangup", `peer closed the ${label} channel`).catch(() => {});
  }

  #onTrack(track: MediaStreamTrack): void {
    if (this.isOver() || track.kind !== "audio" || this.#inbound) return;
    this.#inbound = new InboundAudio({
      track,
      now: () => this.now(),
      energyThreshold: this.config.energyThreshold,
      onFrame: (frame) => this.pushFrame(frame),
    });
  }

  #onConnectionState(): void {
    const pc = this.#pc;
    if (!pc || this.isOver()) return;
    const s = pc.connectionState;
    if (s === "connected" && this.state === "connecting") {
      demoteSendStreamThreads();
      this.#connected();
    } else if (s === "failed") this.close("ice_failed", "peer connection failed").catch(() => {});
  }

  #onIceState(): void {
    const pc = this.#pc;
    if (!pc || this.isOver()) return;
    const s = pc.iceConnectionState;
    if (s === "disconnected") {
      this.#graceTimer ??= setTimeout(() => {
        this.#graceTimer = undefined;
        this.close(
          "ice_disconnected_timeout",
          `ICE disconnected for ${this.config.iceDisconnectedGraceMs} ms`,
        ).catch(() => {});
      }, this.config.iceDisconnectedGraceMs);
    } else if (s === "connected" || s === "completed") {
      clearTimeout(this.#graceTimer);
      this.#graceTimer = undefined;
    } else if (s === "failed") {
      this.close("ice_failed", "ICE failed").catch(() => {});
    }
  }

  #connected(): void {
    clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
    const nowPerf = performance.now();
    this.connectMs = this.#answeredPerf ? nowPerf - this.#answeredPerf : undefined;
    if (this.connectMs !== undefined) connectSeconds.observe(this.connectMs / 1000);
    this.becomeActive();
    this.log.info("session active", { connect_ms: Math.round(this.connectMs ?? 0) });
  }

  protected override clearTransportTimers(): void {
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#graceTimer);
    this.#connectTimer = this.#graceTimer = undefined;
  }

  /** Outbound track → inbound sink → data channels (handlers off first) → peer connection. */
  protected releaseTransport(_reason: CloseReason | null): void {
    try {
      this.#track?.stop();
    } catch { /* already stopped */ }
    try {
      this.#inbound?.stop();
    } catch { /* already stopped */ }
    // Handlers off first, so the channels' close events are not taken for a hang-up.
    closePeer(this.#pc, [this.#events, this.#control]);
  }
}
