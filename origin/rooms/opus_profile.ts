/**
 * How a room's listeners are sent Opus. libwebrtc configures each sender's Opus encoder from the RECEIVER's
 * codec parameters (the fmtp of the offer's opus payload: maxplaybackrate, maxaveragebitrate, stereo, usedtx,
 * useinbandfec, cbr, and the `a=ptime` / `a=maxptime` of its section), so the origin shapes a listener's
 * encoder by rewriting those parameters in the offer before applying it. The answer the client gets is then
 * consistent with what is sent (it only narrows what the client said it accepts).
 *
 * Profiles:
 * - `full` (default): what the client offered (fullband, 20 ms packets).
 * - `fanout`: see FANOUT_OPUS. Each listener's encoder does a fraction of the default's work: at 96 kbit/s
 *   libopus codes speech in CELT-only mode and skips SILK, whose delayed-decision noise-shaping quantizer is
 *   the largest single cost of the default (perf of the origin; bench/room_opus_cost.ts). 60 ms packets cut
 *   per-packet work (RTP, SRTP, pacer, UDP sends) to a third. Trade-off: 96 kbit/s per listener instead of
 *   ~32, 40 ms more packetization delay, no in-band FEC (CELT has none; loss is concealed).
 *
 * A wideband SILK profile (maxplaybackrate=16000, 24 kbit/s, 60 ms) was measured too and did not lower the
 * origin's encoder CPU (SILK is the expensive part), so it is not offered; SPEECH_OPUS stays for benches.
 */
import type { RoomAudioProfile } from "../../protocol/rooms.ts";

export type { RoomAudioProfile };

export interface OpusSendParams {
  /** Highest rate the receiver renders (Hz): 8000/12000/16000/24000/48000 → Opus bandwidth. */
  maxplaybackrate?: number;
  /** Target bitrate ceiling, bits/s. */
  maxaveragebitrate?: number;
  stereo?: 0 | 1;
  usedtx?: 0 | 1;
  useinbandfec?: 0 | 1;
  cbr?: 0 | 1;
  /** Packet duration (ms, 10/20/40/60/120): written as `a=ptime` (libwebrtc reads it into the codec params). */
  ptime?: number;
  /** Largest packet duration the receiver accepts (ms), `a=maxptime`. */
  maxptime?: number;
}

/** Wideband mono speech, 60 ms packets, 24 kbit/s ceiling, no FEC, DTX on in silences (measured, not offered). */
export const SPEECH_OPUS: OpusSendParams = {
  maxplaybackrate: 16_000,
  maxaveragebitrate: 24_000,
  stereo: 0,
  usedtx: 1,
  useinbandfec: 0,
  ptime: 60,
  maxptime: 60,
};

/** Fullband CELT at 96 kbit/s in 60 ms packets, no FEC, no DTX. */
export const FANOUT_OPUS: OpusSendParams = {
  maxaveragebitrate: 96_000,
  stereo: 0,
  usedtx: 0,
  useinbandfec: 0,
  ptime: 60,
  maxptime: 60,
};

export function opusParamsOf(profile: RoomAudioProfile): OpusSendParams | undefined {
  return profile === "fanout" ? FANOUT_OPUS : undefined;
}

/** Parse `key=value;key=value` (a=fmtp parameters). */
function parseFmtp(s: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of s.split(";")) {
    const [k, v] = part.split("=").map((x) => x.trim());
    if (k) out.set(k.toLowerCase(), v ?? "");
  }
  return out;
}

/**
 * Rewrite every audio section's opus parameters in `sdp` with `params` (set or replaced; other parameters
 * kept). Sections without opus are left alone. Line endings are kept (CRLF or LF).
 */
export function shapeOpusOffer(sdp: string, params: OpusSendParams): string {
  const eol = sdp.includes("\r\n") ? "\r\n" : "\n";
  const lines = sdp.split(/\r?\n/);
  const fmtpParams: [string, number][] = [];
  for (
    const k of ["maxplaybackrate", "maxaveragebitrate", "stereo", "usedtx", "useinbandfec", "cbr"] as const
  ) {
    const v = params[k];
    if (v !== undefined) fmtpParams.push([k, v]);
  }
  const out: string[] = [];
  // Sections: [start, end) line ranges beginning at each m= line.
  let i = 0;
  while (i < lines.length) {
    if (!lines[i].startsWith("m=audio")) {
      out.push(lines[i++]);
      continue;
    }
    let end = i + 1;
    while (end < lines.length && !lines[end].startsWith("m=")) end++;
    const section = lines.slice(i, end);
    const rtpmap = section.map((l) => l.match(/^a=rtpmap:(\d+) opus\/48000/i)).find((m) => m);
    if (!rtpmap) {
      out.push(...section);
      i = end;
      continue;
    }
    const pt = rtpmap[1];
    let shaped = section.filter((l) =>
      !(params.ptime !== undefined && l.startsWith("a=ptime:")) &&
      !(params.maxptime !== undefined && l.startsWith("a=maxptime:"))
    );
    const fmtpAt = shaped.findIndex((l) => l.startsWith(`a=fmtp:${pt} `));
    const merged = parseFmtp(fmtpAt >= 0 ? shaped[fmtpAt].slice(`a=fmtp:${pt} `.length) : "");
    for (const [k, v] of fmtpParams) merged.set(k, String(v));
    const fmtpLine = `a=fmtp:${pt} ${[...merged].map(([k, v]) => v === "" ? k : `${k}=${v}`).join(";")}`;
    if (fmtpAt >= 0) shaped[fmtpAt] = fmtpLine;
    else {
      const at = shaped.findIndex((l) => l.startsWith(`a=rtpmap:${pt} `));
      shaped = [...shaped.slice(0, at + 1), fmtpLine, ...shaped.slice(at + 1)];
    }
    // Section-level attributes go last, before a trailing empty line if the section is the last one.
    const tail = shaped.at(-1) === "" ? [shaped.pop()!] : [];
    if (params.ptime !== undefined) shaped.push(`a=ptime:${params.ptime}`);
    if (params.maxptime !== undefined) shaped.push(`a=maxptime:${params.maxptime}`);
    out.push(...shaped, ...tail);
    i = end;
  }
  return out.join(eol);
}
