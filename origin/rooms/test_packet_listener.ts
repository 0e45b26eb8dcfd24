/**
 * A light WHEP listener for the rooms benchmark: a recvonly werift peer (WebRTC in TypeScript) with the
 * `events` channel, which counts the RTP packets it receives and their arrival gaps instead of decoding and
 * playing them. A wrtc listener (origin/rooms/test_listener.ts) runs libwebrtc's whole receive path per
 * listener (NetEq, Opus decoding, a 10 ms sink callback): ~14 ms of CPU per listener·s, so a few hundred of them
 * cannot share 2 cores with the origin they measure. This one costs SRTP and a UDP receive per packet.
 *
 * `decode: true` also decodes every packet (opusscript) to measure speech energy, as a wrtc listener does;
 * the bench decodes on a sample of its clients. Without it, `loudFrames` counts frames in packets of speech
 * size (≥ 40 bytes: the programs' silence codes to a few bytes).
 *
 * Same surface as ListenerClient for what the bench uses: offer(), accept(), waitFor(), receivedFrames,
 * loudFrames, gapsMs, close().
 */
import { Buffer } from "node:buffer";
import OpusScript from "opusscript";
import { RTCPeerConnection, RTCRtpCodecParameters } from "werift";
import type { RTCDataChannel } from "werift";
import { applyWeriftDtlsFix } from "./werift_dtls_fix.ts";
import { applyWeriftFastSrtp } from "./werift_fast_srtp.ts";

const SPEECH_PACKET_BYTES = 40;

export class PacketListenerClient {
  readonly pc: RTCPeerConnection;
  readonly events: RTCDataChannel;
  readonly gapsMs: number[] = [];
  /** RTCP sender reports received: their NTP time and RTP timestamp, and when they arrived (epoch ms). */
  readonly senderReports: Array<{ ntp: bigint; rtpTimestamp: number; at: number }> = [];
  /** With `recordArrivals`: each packet's RTP timestamp and when it arrived (epoch ms), in order. */
  readonly arrivals: Array<{ rtpTimestamp: number; at: number }> = [];
  readonly #recordArrivals: boolean;
  receivedFrames = 0;
  loudFrames = 0;
  packets = 0;
  #lastAt = 0;
  #decoder: OpusScript | null;
  #closed = false;

  readonly #aesCmOnly: boolean;

  /**
   * `srtp: "aes-cm"` offers only AES_CM_128_HMAC_SHA1_80 in the DTLS handshake, as the libwebrtc (wrtc)
   * listeners here do; werift's own default prefers AEAD_AES_128_GCM.
   */
  constructor(opts: { decode?: boolean; srtp?: "aes-cm" | "any"; recordArrivals?: boolean } = {}) {
    this.#recordArrivals = opts.recordArrivals ?? false;
    this.#aesCmOnly = opts.srtp === "aes-cm";
    // As DTLS server (a wrtc origin answers as client) werift needs the same fix as the origin's listeners.
    applyWeriftDtlsFix();
    applyWeriftFastSrtp();
    this.#decoder = opts.decode ? new OpusScript(48_000, 1) : null;
    this.pc = new RTCPeerConnection({
      codecs: {
        audio: [new RTCRtpCodecParameters({ mimeType: "audio/opus", clockRate: 48_000, channels: 2 })],
        video: [],
      },
      iceServers: [],
      iceUseIpv6: false,
    });
    const t = this.pc.addTransceiver("audio", { direction: "recvonly" });
    t.onTrack.subscribe((track) =>
      track.onReceiveRtp.subscribe((rtp) => {
        if (this.#recordArrivals) this.arrivals.push({ rtpTimestamp: rtp.header.timestamp, at: Date.now() });
        this.#onRtp(rtp.payload);
      })
    );
    t.receiver.onRtcp.subscribe((p) => {
      const info = p as { type?: number; senderInfo?: { ntpTimestamp: bigint; rtpTimestamp: number } };
      if (p.type === 200 && info.senderInfo) {
        this.senderReports.push({
          ntp: info.senderInfo.ntpTimestamp,
          rtpTimestamp: info.senderInfo.rtpTimestamp,
          at: Date.now(),
        });
      }
    });
    this.events = this.pc.createDataChannel("events");
  }

  #onRtp(payload: Buffer): void {
    const at = performance.now();
    this.packets++;
    this.receivedFrames += 2;
    if (this.#lastAt > 0 && this.packets > 5) this.gapsMs.push(at - this.#lastAt);
    this.#lastAt = at;
    if (this.#decoder) {
      const pcm = new Int16Array(this.#decoder.decode(payload).buffer.slice(0));
      let sum = 0;
      for (let i = 0; i < pcm.length; i++) sum += pcm[i] * pcm[i];
      if (Math.sqrt(sum / Math.max(1, pcm.length)) > 300) this.loudFrames += 2;
    } else if (payload.length >= SPEECH_PACKET_BYTES) this.loudFrames += 2;
  }

  async offer(): Promise<string> {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    if (this.#aesCmOnly) {
      for (const t of this.pc.dtlsTransports) (t as unknown as { srtpProfiles: number[] }).srtpProfiles = [1];
    }
    const until = performance.now() + 3000;
    while (this.pc.iceGatheringState !== "complete" && performance.now() < until) {
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.pc.localDescription!.sdp;
  }

  async accept(answer: string): Promise<void> {
    await this.pc.setRemoteDescription({ type: "answer", sdp: answer });
  }

  async waitFor(pred: () => boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
    const t0 = performance.now();
    while (!pred()) {
      if (performance.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#decoder?.delete();
    this.#decoder = null;
    this.pc.close().catch(() => {});
  }
}
