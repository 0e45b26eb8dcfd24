/**
 * Cheap structural checks of an SDP offer, done at the edge before anything is stored or forwarded (the origin
 * re-validates with its own peer). Limits are explicit: ≤ 64 KiB, v=0 first, at least one audio m-line.
 */
export const MAX_SDP_BYTES = 64 * 1024;

export type SdpCheck = { ok: true } | { ok: false; message: string };

export function checkOffer(sdp: string): SdpCheck {
  if (new TextEncoder().encode(sdp).byteLength > MAX_SDP_BYTES) {
    return { ok: false, message: `SDP exceeds ${MAX_SDP_BYTES} bytes` };
  }
  const lines = sdp.split(/\r?\n/).filter((l) => l.length > 0);
  if (lines[0] !== "v=0") return { ok: false, message: "SDP must start with v=0" };
  for (const l of lines) {
    if (!/^[a-z]=/.test(l)) return { ok: false, message: `malformed SDP line: ${l.slice(0, 40)}` };
  }
  if (!lines.some((l) => /^m=audio \d+ [A-Z/]+ [\d ]+$/.test(l))) {
    return { ok: false, message: "SDP offer has no audio m-line" };
  }
  if (!lines.some((l) => l.startsWith("a=ice-ufrag:"))) {
    return { ok: false, message: "SDP offer has no ICE credentials" };
  }
  return { ok: true };
}
