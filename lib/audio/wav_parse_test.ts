import assert from "node:assert/strict";
import { parseWavHeader, wavToMonoFloat } from "./wav_parse.ts";
import { InvalidAudioError, UnsupportedAudioError } from "./errors.ts";

interface WavSpec {
  tag?: number;
  channels?: number;
  rate?: number;
  bits?: number;
  frames?: number;
  extensible?: number; // sub-format tag
  blockAlign?: number;
  dataFirst?: boolean;
  extraChunk?: { id: string; size: number; claim?: number };
  riffSize?: number;
  dataSize?: number;
  truncate?: number;
}

/** Build a WAV byte by byte, with knobs for every field a hostile or sloppy writer gets wrong. */
export function buildWav(spec: WavSpec = {}): Uint8Array {
  const channels = spec.channels ?? 1, rate = spec.rate ?? 16000, bits = spec.bits ?? 16;
  const frames = spec.frames ?? 160;
  const tag = spec.extensible !== undefined ? 0xfffe : spec.tag ?? 1;
  const align = spec.blockAlign ?? channels * bits / 8;
  const fmtSize = tag === 0xfffe ? 40 : 16;
  const fmt = new Uint8Array(8 + fmtSize);
  const fv = new DataView(fmt.buffer);
  fmt.set(new TextEncoder().encode("fmt "));
  fv.setUint32(4, fmtSize, true);
  fv.setUint16(8, tag, true);
  fv.setUint16(10, channels, true);
  fv.setUint32(12, rate, true);
  fv.setUint32(16, rate * align, true);
  fv.setUint16(20, align, true);
  fv.setUint16(22, bits, true);
  if (tag === 0xfffe) {
    fv.setUint16(24, 22, true);
    fv.setUint16(26, bits, true);
    fv.setUint32(28, channels === 1 ? 4 : 3, true);
    fv.setUint16(32, spec.extensible!, true);
    fmt.set([0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71], 34);
  }
  const dataLen = frames * align;
  const data = new Uint8Array(8 + dataLen + (dataLen & 1));
  const dv = new DataView(data.buffer);
  data.set(new TextEncoder().encode("data"));
  dv.setUint32(4, spec.dataSize ?? dataLen, true);
  // A 1 kHz sine at half scale in every channel.
  for (let f = 0; f < frames; f++) {
    const x = 0.5 * Math.sin(2 * Math.PI * 1000 * f / rate);
    for (let c = 0; c < channels; c++) {
      const o = 8 + f * align + c * (bits / 8);
      if (tag === 3 || spec.extensible === 3) {
        if (bits === 32) dv.setFloat32(o, x, true);
        else if (bits === 64) dv.setFloat64(o, x, true);
      } else if (bits === 8) dv.setUint8(o, Math.round(x * 127) + 128);
      else if (bits === 16) dv.setInt16(o, Math.round(x * 32767), true);
      else if (bits === 24) {
        const v = Math.round(x * 8388607);
        dv.setUint8(o, v & 0xff);
        dv.setUint8(o + 1, (v >> 8) & 0xff);
        dv.setInt8(o + 2, v >> 16);
      } else if (bits === 32) dv.setInt32(o, Math.round(x * 2147483647), true);
    }
  }
  const extra = spec.extraChunk
    ? (() => {
      const c = new Uint8Array(8 + spec.extraChunk.size + (spec.extraChunk.size & 1));
      c.set(new TextEncoder().encode(spec.extraChunk.id));
      new DataView(c.buffer).setUint32(4, spec.extraChunk.claim ?? spec.extraChunk.size, true);
      return c;
    })()
    : new Uint8Array(0);
  const body = spec.dataFirst ? [extra, data, fmt] : [fmt, extra, data];
  const total = 12 + body.reduce((n, b) => n + b.length, 0);
  const out = new Uint8Array(total);
  out.set(new TextEncoder().encode("RIFF"));
  new DataView(out.buffer).setUint32(4, spec.riffSize ?? total - 8, true);
  out.set(new TextEncoder().encode("WAVE"), 8);
  let at = 12;
  for (const b of body) {
    out.set(b, at);
    at += b.length;
  }
  return spec.truncate !== undefined ? out.slice(0, spec.truncate) : out;
}

Deno.test("wav: every supported layout parses and reads back the same sine", () => {
  const layouts: WavSpec[] = [
    { bits: 8 },
    { bits: 16 },
    { bits: 24 },
    { bits: 32 },
    { tag: 3, bits: 32 },
    { tag: 3, bits: 64 },
    { extensible: 1, bits: 24, channels: 2 },
    { extensible: 3, bits: 32, channels: 2 },
    { bits: 16, channels: 6 },
  ];
  for (const spec of layouts) {
    const bytes = buildWav(spec);
    const info = parseWavHeader(bytes, { strict: true });
    assert.equal(info.frames, 160, JSON.stringify(spec));
    assert.equal(info.channels, spec.channels ?? 1);
    const pcm = wavToMonoFloat(bytes, info);
    const expected = 0.5 * Math.sin(2 * Math.PI * 1000 * 3 / 16000);
    assert.ok(Math.abs(pcm[3] - expected) <= (spec.bits === 8 ? 0.01 : 1e-4), JSON.stringify(spec));
  }
});

Deno.test("wav: chunk order and odd-sized chunks are handled", () => {
  const a = buildWav({ dataFirst: true, extraChunk: { id: "LIST", size: 7 } });
  assert.equal(parseWavHeader(a, { strict: true }).frames, 160);
  const b = buildWav({ extraChunk: { id: "junk", size: 3 }, bits: 8, frames: 101 });
  const info = parseWavHeader(b, { strict: true });
  assert.equal(info.frames, 101);
  assert.equal(info.dataBytes, 101);
});

function reason(bytes: Uint8Array, strict = true): string {
  try {
    parseWavHeader(bytes, { strict });
  } catch (e) {
    assert.ok(e instanceof InvalidAudioError || e instanceof UnsupportedAudioError, String(e));
    return `${e.status} ${e.message}`;
  }
  throw new Error("accepted");
}

Deno.test("wav: refuses with the exact reason", () => {
  const full = buildWav();
  const cases: [Uint8Array, string, boolean?][] = [
    [buildWav({ channels: 0, blockAlign: 2 }), "400 WAV: 0 channels"],
    [buildWav({ bits: 12, blockAlign: 2 }), "400 WAV: 12-bit PCM not supported (8/16/24/32-bit are)"],
    [buildWav({ tag: 3, bits: 16 }), "400 WAV: 16-bit float not supported (32/64-bit are)"],
    [buildWav({ rate: 500 }), "400 WAV: sample rate 500 Hz outside 1000–384000 Hz"],
    [buildWav({ dataSize: 0x80000000, riffSize: 0xffffff00 }), "400 WAV: RIFF size mismatch"],
    [buildWav({ dataSize: 0x80000000 }), "400 WAV: data chunk claims 2147483648 bytes, file has 320"],
    [buildWav({ riffSize: 100 }), "400 WAV: RIFF size mismatch: header says 100 bytes follow, file has 356"],
    [full.slice(0, full.length - 7), "400 WAV: RIFF size mismatch"],
    [buildWav({ truncate: 30 }), "400 WAV: RIFF size mismatch"],
    [buildWav({ blockAlign: 4 }), "400 WAV: block align 4, expected 2 for 1 × 16-bit"],
    [buildWav({ tag: 6, bits: 8 }), "415 WAV encoding A-law (format 6) is not supported"],
    [buildWav({ tag: 2 }), "415 WAV encoding MS ADPCM (format 2) is not supported"],
    [
      buildWav({ extraChunk: { id: "LIST", size: 4, claim: 0x7fffffff } }),
      `400 WAV: chunk "LIST" claims 2147483647 bytes`,
    ],
    [full.slice(0, 8), "400 WAV: file is 8 bytes, shorter than the 12-byte RIFF header"],
  ];
  for (const [bytes, expected] of cases) {
    const got = reason(bytes);
    assert.ok(got.startsWith(expected), `expected "${expected}", got "${got}"`);
  }
  // Strict: a trailing partial frame is truncated data; lenient: dropped.
  const odd = buildWav({ bits: 16 });
  const dv = new DataView(odd.buffer);
  const cut = odd.slice(0, odd.length - 1);
  new DataView(cut.buffer).setUint32(4, cut.length - 8, true);
  new DataView(cut.buffer).setUint32(40, 319, true);
  assert.ok(reason(cut).startsWith("400 WAV: data is 319 bytes, not a whole number of 2-byte frames"));
  assert.equal(parseWavHeader(cut).frames, 159);
  assert.equal(dv.getUint32(40, true), 320);
});

Deno.test("wav: lenient mode accepts streaming-writer sizes, strict refuses them", () => {
  const s = buildWav({ riffSize: 0xffffffff, dataSize: 0xffffffff });
  assert.equal(parseWavHeader(s).frames, 160);
  assert.ok(reason(s).startsWith("400 WAV: RIFF size mismatch"));
  const z = buildWav({ riffSize: 0, dataSize: 0 });
  assert.equal(parseWavHeader(z).frames, 160);
});
