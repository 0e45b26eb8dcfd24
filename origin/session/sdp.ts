/**
 * The origin's own check of an SDP offer before a peer is built for it (the edge checks too, but the origin
 * never trusts its caller for input that reaches native code). Limits: ≤ 64 KiB, well-formed `x=` lines starting
 * with `v=0`, ICE credentials and a DTLS fingerprint, at least one audio m-line, and an `m=application` section
 * (the client creates the `events` and `control` data channels before offering; see session.ts).
 */
import { ApiError } from "../../lib/errors.ts";

export const MAX_OFFER_BYTES = 64 * 1024;

export interface OfferSummary {
  /** Number of audio m-lines (the first one is used). */
  audioSections: number;
  hasDataChannel: boolean;
  bytes: number;
}

/** Validate an offer. Returns a summary, or throws ApiError 413 (too large) / 400 (malformed). */
export function validateOffer(sdp: unknown): OfferSummary {
  if (typeof sdp !== "string" || sdp.length === 0) {
    throw new ApiError(400, "bad_request", "invalid SDP offer: empty or not text");
  }
  const bytes = new TextEncoder().encode(sdp).byteLength;
  if (bytes > MAX_OFFER_BYTES) {
    throw new ApiError(413, "payload_too_large", `SDP offer is ${bytes} bytes (limit ${MAX_OFFER_BYTES})`);
  }
  const bad = (why: string): never => {
    throw new ApiError(400, "bad_request", `invalid SDP offer: ${why}`);
  };
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(sdp)) bad("control characters");
  const lines = sdp.split(/\r?\n/).filter((l) => l.length > 0);
  if (lines[0] !== "v=0") bad("must start with v=0");
  let audioSections = 0, hasDataChannel = false, ufrag = false, fingerprint = false, origin = false;
  for (const l of lines) {
    if (!/^[a-z]=/.test(l)) bad(`malformed line ${JSON.stringify(l.slice(0, 40))}`);
    if (l.startsWith("o=")) origin = true;
    if (l.startsWith("m=")) {
      const m = l.match(/^m=([a-z]+) (\d+)(?:\/\d+)? ([A-Za-z/]+) (.+)$/);
      if (!m) bad(`malformed m-line ${JSON.stringify(l.slice(0, 60))}`);
      const [, media, port] = m!;
      if (Number(port) > 65535) bad("m-line port out of range");
      if (media === "audio") audioSections++;
      if (media === "application" && /webrtc-datachannel/.test(l)) hasDataChannel = true;
    }
    if (l.startsWith("a=ice-ufrag:")) ufrag = true;
    if (l.startsWith("a=fingerprint:")) fingerprint = true;
  }
  if (!origin) bad("no o= line");
  if (audioSections === 0) bad("no audio m-line");
  if (!ufrag) bad("no ICE credentials (a=ice-ufrag)");
  if (!fingerprint) bad("no DTLS fingerprint");
  if (!hasDataChannel) {
    bad("no data channel section: create the `events` and `control` channels before making the offer");
  }
  return { audioSections, hasDataChannel, bytes };
}
