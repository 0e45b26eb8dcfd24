/**
 * Generated bad input for `GET /v1/listen` (seeded, so a failure names the seed that reproduces it): refusals
 * before the stream starts (bad credentials in every place a credential can go, bad sample rates, bad options,
 * bad resume parameters) and violations after it started (text where binary is expected, oversize frames,
 * frames longer than 1 s, odd PCM lengths, floods faster than real time, broken WAV headers). Each case says
 * the close code it must get, and whether a session row is expected (a stream that started has one).
 */
import { LISTEN_CLOSE, MAX_FRAME_BYTES } from "../protocol/listen.ts";
import { wavHeader } from "../protocol/wav.ts";

export interface ListenBadCase {
  name: string;
  /** Query string (with `?`); default `?sample_rate=16000&mode=echo`. */
  query?: string;
  protocols?: string[];
  /** Replace the valid bearer header (null: no header at all). */
  headers?: Record<string, string> | null;
  /** Sent once the stream is active (the case then has a session row). */
  send?: (w: WebSocket) => void;
  /** Acceptable close codes. */
  codes: number[];
  /** The edge refuses it before the origin reads it: no bye event. */
  edgeOnly?: boolean;
}

/** mulberry32: small, seedable, good enough to spread cases. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TCHAR = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+.^_`|~-";
const PRINTABLE = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join("");

export function generateListenBadCases(seed: number, counts: { refusals: number; violations: number }) {
  const r = prng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)];
  const str = (alphabet: string, lo: number, hi: number) =>
    Array.from({ length: int(lo, hi) }, () => alphabet[int(0, alphabet.length - 1)]).join("");
  const echo = "&mode=echo";

  const refusals: Array<() => ListenBadCase> = [
    () => ({
      name: "random bearer header",
      headers: { authorization: `Bearer ${str(TCHAR, 1, 300)}` },
      codes: [LISTEN_CLOSE.unauthorized],
    }),
    () => ({
      name: "key-shaped bearer",
      headers: { authorization: `Bearer pk_${str("0123456789abcdef", 8, 64)}` },
      codes: [LISTEN_CLOSE.unauthorized],
    }),
    () => ({
      name: "token-shaped bearer",
      headers: {
        authorization: `Bearer ${str(TCHAR.slice(0, 62), 10, 60)}.${str(TCHAR.slice(0, 62), 10, 200)}.${
          str(TCHAR.slice(0, 62), 10, 60)
        }`,
      },
      codes: [LISTEN_CLOSE.unauthorized],
    }),
    () => ({
      name: "non-bearer authorization",
      headers: { authorization: `${pick(["Basic", "Token", "Digest", ""])} ${str(TCHAR, 1, 80)}` },
      codes: [LISTEN_CLOSE.unauthorized],
    }),
    () => ({
      name: "bearer over 4096 chars",
      headers: { authorization: `Bearer ${str(TCHAR, 4097, 6000)}` },
      codes: [LISTEN_CLOSE.unauthorized],
    }),
    () => ({
      name: "random ?token=",
      headers: null,
      query: `?sample_rate=16000&token=${encodeURIComponent(str(PRINTABLE, 1, 300))}`,
      codes: [LISTEN_CLOSE.unauthorized],
    }),
    () => ({
      name: "random bearer subprotocol",
      headers: null,
      protocols: ["parley.listen.v1", `bearer.${str(TCHAR, 1, 200)}`],
      codes: [LISTEN_CLOSE.unauthorized],
    }),
    () => ({ name: "no credential", headers: null, codes: [LISTEN_CLOSE.unauthorized] }),
    () => {
      const n = pick([int(-100000, 7999), int(48001, 999999), 0]);
      return { name: `sample_rate ${n}`, query: `?sample_rate=${n}`, codes: [LISTEN_CLOSE.badRequest] };
    },
    () => {
      const raw = pick([
        `${int(8000, 48000)}.${int(1, 9)}`,
        `${int(8, 48)}e3`,
        `0x${int(8000, 48000).toString(16)}`,
        ` ${int(8000, 48000)}`,
        `${int(8000, 48000)}hz`,
        str("abcdefghij-+", 1, 12),
        "9".repeat(int(7, 40)),
      ]);
      return {
        name: `sample_rate ${JSON.stringify(raw)}`,
        query: `?sample_rate=${encodeURIComponent(raw)}`,
        codes: [LISTEN_CLOSE.badRequest],
      };
    },
    () => {
      const mode = str("abcdefghijklmnopqrstuvwxyz", 1, 20);
      return {
        name: `mode ${mode}`,
        query: `?sample_rate=16000&mode=${mode === "echo" || mode === "say" ? "shout" : mode}`,
        codes: [LISTEN_CLOSE.badRequest],
      };
    },
    () => {
      // Text the database cannot store (NUL) in an option that is stored with the row.
      const key = pick(["language", "voice"]);
      const v = `${str("abcdefgh", 0, 4)}\u0000${str("abcdefgh", 1, 4)}`;
      return {
        name: `NUL in ${key}`,
        query: `?sample_rate=16000&${key}=${encodeURIComponent(v)}`,
        codes: [LISTEN_CLOSE.badRequest],
      };
    },
    () => ({
      name: "resume: not a uuid",
      query: `?sample_rate=16000&resume=${encodeURIComponent(str(PRINTABLE, 1, 60))}&last_seq=0`,
      codes: [LISTEN_CLOSE.badRequest],
    }),
    () => ({
      name: "resume: unknown session",
      query: `?sample_rate=16000&resume=${crypto.randomUUID()}&last_seq=${int(0, 1000)}`,
      codes: [LISTEN_CLOSE.notFound],
    }),
    () => ({
      name: "resume: bad last_seq",
      query: `?sample_rate=16000&resume=${crypto.randomUUID()}&last_seq=${
        encodeURIComponent(pick([`-${int(1, 99)}`, str("abc.-", 1, 5), "9".repeat(int(10, 30))]))
      }`,
      codes: [LISTEN_CLOSE.badRequest],
    }),
  ];

  const violations: Array<() => ListenBadCase> = [
    () => {
      // Text that is not a JSON object: never starts with `{` (after optional whitespace).
      let text = str(PRINTABLE, 1, 2000);
      if (/^\s*\{/.test(text)) text = "x" + text;
      return { name: "text frame where binary is expected", send: (w) => w.send(text), codes: [1003] };
    },
    () => {
      const n = int(MAX_FRAME_BYTES + 1, 4 * MAX_FRAME_BYTES);
      return {
        name: `oversize frame ${n} B`,
        send: (w) => w.send(new Uint8Array(n)),
        codes: [LISTEN_CLOSE.tooBig],
        edgeOnly: true,
      };
    },
    () => {
      // 8 kHz: 1 s is 16000 bytes; anything longer but within the byte limit is over the duration limit.
      const n = 2 * int(8001, MAX_FRAME_BYTES / 2);
      return {
        name: `frame over 1 s (${n} B at 8 kHz)`,
        query: `?sample_rate=8000${echo}`,
        send: (w) => w.send(new Uint8Array(n)),
        codes: [LISTEN_CLOSE.tooBig],
      };
    },
    () => {
      const n = 2 * int(0, 7999) + 1;
      return {
        name: `odd PCM length ${n}`,
        query: `?sample_rate=8000${echo}`,
        send: (w) => w.send(new Uint8Array(n)),
        codes: [LISTEN_CLOSE.invalidPayload],
      };
    },
    () => {
      const rate = pick([8000, 16000, 22050, 44100, 48000]);
      // Each frame within the byte limit (else it is the oversize case, 1009).
      const frameMs = int(100, Math.min(900, Math.floor(MAX_FRAME_BYTES / 2 / rate * 1000)));
      const bytes = 2 * Math.round(rate * frameMs / 1000);
      const count = Math.ceil(15_000 / frameMs) + 5;
      return {
        name: `flood ${count}×${frameMs} ms at ${rate}`,
        query: `?sample_rate=${rate}${echo}`,
        send: (w) => {
          const f = new Uint8Array(bytes);
          for (let i = 0; i < count && w.readyState === WebSocket.OPEN; i++) w.send(f);
        },
        codes: [LISTEN_CLOSE.policy],
      };
    },
    () => {
      const h = wavHeader(16000, null);
      const dv = new DataView(h.buffer);
      const what = pick(["channels", "bits", "float", "rate"] as const);
      if (what === "channels") {
        const ch = int(2, 8);
        dv.setUint16(22, ch, true);
        dv.setUint16(32, ch * 2, true);
        dv.setUint32(28, 16000 * ch * 2, true);
      } else if (what === "bits") {
        const bits = pick([8, 24, 32]);
        dv.setUint16(34, bits, true);
        dv.setUint16(32, bits / 8, true);
        dv.setUint32(28, 16000 * bits / 8, true);
      } else if (what === "float") {
        dv.setUint16(20, 3, true);
        dv.setUint16(34, 32, true);
        dv.setUint16(32, 4, true);
        dv.setUint32(28, 64000, true);
      } else {
        const rate = pick([int(1000, 7999), int(48001, 192000)]);
        dv.setUint32(24, rate, true);
        dv.setUint32(28, rate * 2, true);
      }
      return {
        name: `WAV header: ${what}`,
        query: `?mode=echo`,
        send: (w) => w.send(h),
        codes: [LISTEN_CLOSE.unsupportedData],
      };
    },
    () => {
      const cut = int(4, 43);
      return {
        name: `WAV header cut at ${cut} B`,
        query: `?mode=echo`,
        send: (w) => w.send(wavHeader(16000, null).subarray(0, cut)),
        codes: [LISTEN_CLOSE.invalidPayload],
      };
    },
    () => {
      // RIFF magic then noise: unreadable (1007) or readable but not PCM16 mono 8–48 kHz (1003).
      const noise = new Uint8Array(int(8, 400));
      for (let i = 0; i < noise.length; i++) noise[i] = int(0, 255);
      noise.set([0x52, 0x49, 0x46, 0x46]);
      return {
        name: `RIFF + ${noise.length - 4} random bytes`,
        query: `?mode=echo`,
        send: (w) => w.send(noise),
        codes: [LISTEN_CLOSE.invalidPayload, LISTEN_CLOSE.unsupportedData],
      };
    },
    () => {
      const n = 2 * int(1, 400);
      return {
        name: "audio before any rate",
        query: `?mode=echo`,
        send: (w) => w.send(new Uint8Array(n)),
        codes: [LISTEN_CLOSE.invalidPayload],
      };
    },
  ];

  const out: ListenBadCase[] = [];
  for (let i = 0; i < counts.refusals; i++) out.push(refusals[i % refusals.length]());
  for (let i = 0; i < counts.violations; i++) out.push(violations[i % violations.length]());
  return out;
}
