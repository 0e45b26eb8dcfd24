/**
 * SDP offer/answer for one audio stream (RFC 3264): PCMU (0) or PCMA (8) at 8 kHz, telephone-event/8000 on a
 * dynamic payload type, comfort noise (13) accepted on receive, 20 ms ptime. Parsing and writing use npm
 * `sdp-transform`.
 */
import sdpTransform from "sdp-transform";
import { SdpNegotiationError } from "./errors.ts";

export type MediaDirection = "sendrecv" | "sendonly" | "recvonly" | "inactive";

export interface RemoteAudio {
  address: string;
  port: number;
  /** Codec payload types the remote offered/answered, in its preference order. */
  payloads: number[];
  /** Payload type the remote uses for telephone-event, if any. */
  dtmfPayloadType?: number;
  direction: MediaDirection;
}

export interface NegotiatedAudio {
  remote: RemoteAudio;
  payloadType: 0 | 8;
  dtmfPayloadType?: number;
  /** Our direction in the answer. */
  localDirection: MediaDirection;
  /** True when the remote put the call on hold (sendonly, inactive or a 0.0.0.0 connection address). */
  held: boolean;
}

const CODECS: Record<number, string> = { 0: "PCMU", 8: "PCMA" };
export const DEFAULT_DTMF_PT = 101;

interface ParsedMedia {
  type: string;
  port: number;
  payloads?: string | number;
  connection?: { ip: string };
  direction?: string;
  rtp?: Array<{ payload: number; codec: string; rate?: number }>;
}
interface ParsedSdp {
  connection?: { ip: string };
  direction?: string;
  media?: ParsedMedia[];
}

export function parseRemoteAudio(sdp: string): RemoteAudio {
  let parsed: ParsedSdp;
  try {
    parsed = sdpTransform.parse(sdp.replace(/\r?\n/g, "\r\n"));
  } catch (e) {
    throw new SdpNegotiationError(`unparseable SDP: ${(e as Error).message}`);
  }
  const audio = parsed.media?.find((m) => m.type === "audio" && m.port !== 0);
  if (!audio) throw new SdpNegotiationError("no active audio stream");
  const address = audio.connection?.ip ?? parsed.connection?.ip;
  if (!address) throw new SdpNegotiationError("no connection address");
  const payloads = String(audio.payloads ?? "").split(/\s+/).filter(Boolean).map(Number);
  if (payloads.some((p) => !Number.isInteger(p) || p < 0 || p > 127)) {
    throw new SdpNegotiationError("bad payload list");
  }
  const dtmf = audio.rtp?.find((r) => /^telephone-event$/i.test(r.codec) && r.rate === 8000);
  const direction = (audio.direction ?? parsed.direction ?? "sendrecv") as MediaDirection;
  if (!Number.isInteger(audio.port) || audio.port < 1 || audio.port > 65535) {
    throw new SdpNegotiationError("bad media port");
  }
  return { address, port: audio.port, payloads, dtmfPayloadType: dtmf?.payload, direction };
}

const ANSWER_DIRECTION: Record<MediaDirection, MediaDirection> = {
  sendrecv: "sendrecv",
  sendonly: "recvonly",
  recvonly: "sendonly",
  inactive: "inactive",
};

/** Chooses the first codec of the remote's list that we support (their preference wins). */
export function negotiate(remote: RemoteAudio, supported: number[] = [0, 8]): NegotiatedAudio {
  const pt = remote.payloads.find((p) => supported.includes(p)) as 0 | 8 | undefined;
  if (pt === undefined) throw new SdpNegotiationError("no common codec (PCMU/PCMA)");
  const held = remote.direction === "sendonly" || remote.direction === "inactive" ||
    remote.address === "0.0.0.0";
  return {
    remote,
    payloadType: pt,
    dtmfPayloadType: remote.dtmfPayloadType,
    localDirection: remote.address === "0.0.0.0" ? "inactive" : ANSWER_DIRECTION[remote.direction],
    held,
  };
}

export interface LocalSdpOptions {
  address: string;
  port: number;
  sessionId: number;
  version: number;
  payloads: number[];
  dtmfPayloadType?: number;
  direction: MediaDirection;
}

export function writeSdp(o: LocalSdpOptions): string {
  const rtp = o.payloads.map((p) => ({ payload: p, codec: CODECS[p], rate: 8000 }));
  const fmtp = [];
  const payloads = [...o.payloads];
  if (o.dtmfPayloadType !== undefined) {
    rtp.push({ payload: o.dtmfPayloadType, codec: "telephone-event", rate: 8000 });
    fmtp.push({ payload: o.dtmfPayloadType, config: "0-16" });
    payloads.push(o.dtmfPayloadType);
  }
  return sdpTransform.write({
    version: 0,
    origin: {
      username: "parley",
      sessionId: o.sessionId,
      sessionVersion: o.version,
      netType: "IN",
      ipVer: 4,
      address: o.address,
    },
    name: "parley",
    connection: { version: 4, ip: o.address },
    timing: { start: 0, stop: 0 },
    media: [{
      type: "audio",
      port: o.port,
      protocol: "RTP/AVP",
      payloads: payloads.join(" "),
      rtp,
      fmtp,
      ptime: 20,
      direction: o.direction,
    }],
  });
}
