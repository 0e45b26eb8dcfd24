/** Test inputs for the audio codec tests: WAVs built field by field, and real speech made on the spot. */
import assert from "node:assert/strict";
import { parseWavHeader, wavToMonoFloat } from "./wav_parse.ts";

export interface WavSpec {
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

/** A spoken sentence (espeak-ng) at `rate`, through sox: real speech, made on the spot. */
export async function speech(rate: number): Promise<Float32Array> {
  const dir = await Deno.makeTempDir();
  try {
    const raw = `${dir}/s.wav`, out = `${dir}/r.wav`;
    const say = new Deno.Command("espeak-ng", {
      args: ["-w", raw, "The quick brown fox jumps over the lazy dog."],
    });
    assert.equal((await say.output()).code, 0);
    const sox = new Deno.Command("sox", { args: [raw, "-r", String(rate), "-b", "16", out] });
    assert.equal((await sox.output()).code, 0);
    const bytes = await Deno.readFile(out);
    return wavToMonoFloat(bytes, parseWavHeader(bytes));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
