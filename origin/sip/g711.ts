/** G.711 µ-law (PT 0) and A-law (PT 8) through npm `alawmulaw` (pure JS, ITU tables, no dependencies). */
import alawmulaw from "alawmulaw";

export function encodeG711(payloadType: 0 | 8, pcm: Int16Array): Uint8Array {
  return payloadType === 0 ? alawmulaw.mulaw.encode(pcm) : alawmulaw.alaw.encode(pcm);
}

export function decodeG711(payloadType: 0 | 8, bytes: Uint8Array): Int16Array {
  return payloadType === 0 ? alawmulaw.mulaw.decode(bytes) : alawmulaw.alaw.decode(bytes);
}
