import assert from "node:assert/strict";
import { ApiError } from "../errors.ts";
import { trackFromWav } from "./track_wav.ts";

const LIMITS = { maxDurationMs: 60_000 };

/** A WAV with the given format fields and `dataBytes` of payload (chunks in the given order). */
function wav(o: {
  channels?: number;
  rate?: number;
  bits?: number;
  tag?: number;
  frames?: number;
  riffSize?: number;
  dataSize?: number;
  order?: "fmt-data" | "data-fmt" | "list-fmt-data";
  truncate?: number;
} = {}): Uint8Array {
  const channels = o.channels ?? 1, rate = o.rate ?? 48_000, bits = o.bits ?? 16, tag = o.tag ?? 1;
  const frames = o.frames ?? 4800;
  const align = channels * (bits / 8);
  const data = new Uint8Array(frames * align);
  const dv = new DataView(data.buffer);
  if (bits === 16) {
    for (let i = 0; i < frames * channels; i++) {
      dv.setInt16(i * 2, Math.round(8000 * Math.sin(i / 10)), true);
    }
  }
  const fmt = new Uint8Array(24);
  const f = new DataView(fmt.buffer);
  fmt.set([0x66, 0x6d, 0x74, 0x20]);
  f.setUint32(4, 16, true);
  f.setUint16(8, tag, true);
  f.setUint16(10, channels, true);
  f.setUint32(12, rate, true);
  f.setUint32(16, rate * align, true);
  f.setUint16(20, align, true);
  f.setUint16(22, bits, true);
  const dh = new Uint8Array(8);
  dh.set([0x64, 0x61, 0x74, 0x61]);
  new DataView(dh.buffer).setUint32(4, o.dataSize ?? data.length, true);
  const list = new Uint8Array([0x4c, 0x49, 0x53, 0x54, 4, 0, 0, 0, 0x49, 0x4e, 0x46, 0x4f]);
  const parts = o.order === "data-fmt"
    ? [dh, data, fmt]
    : o.order === "list-fmt-data"
    ? [list, fmt, dh, data]
    : [fmt, dh, data];
  const body = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(12 + body);
  out.set([0x52, 0x49, 0x46, 0x46]);
  new DataView(out.buffer).setUint32(4, o.riffSize ?? 4 + body, true);
  out.set([0x57, 0x41, 0x56, 0x45], 8);
  let off = 12;
  for (const p of parts) out.set(p, (off += p.length) - p.length);
  return o.truncate ? out.subarray(0, out.length - o.truncate) : out;
}

function refused(bytes: Uint8Array, status: number, re: RegExp): void {
  assert.throws(() => trackFromWav(bytes, LIMITS), (e: unknown) => {
    assert.ok(e instanceof ApiError, String(e));
    assert.equal(e.status, status, e.message);
    assert.match(e.message, re);
    return true;
  });
}

Deno.test("track WAV: native 16-bit mono 48 kHz is stored sample for sample", () => {
  const bytes = wav();
  const t = trackFromWav(bytes, LIMITS);
  assert.equal(t.converted, false);
  assert.equal(t.samples.length, 4800);
  assert.equal(t.durationMs, 100);
  assert.equal(t.samples[5], new DataView(bytes.buffer).getInt16(44 + 10, true));
});

Deno.test("track WAV: legal odd chunk orders are read (data before fmt, a LIST chunk first)", () => {
  assert.equal(trackFromWav(wav({ order: "data-fmt" }), LIMITS).samples.length, 4800);
  assert.equal(trackFromWav(wav({ order: "list-fmt-data" }), LIMITS).samples.length, 4800);
});

Deno.test("track WAV: other PCM is converted (stereo 44.1 kHz → mono 48 kHz, 24-bit)", () => {
  const t = trackFromWav(wav({ channels: 2, rate: 44_100, frames: 44_100 }), LIMITS);
  assert.equal(t.converted, true);
  assert.equal(t.samples.length, 48_000);
  assert.match(t.source, /PCM 16-bit, 2 channels, 44100 Hz/);
  assert.equal(trackFromWav(wav({ bits: 24, frames: 480 }), LIMITS).samples.length, 480);
});

Deno.test("track WAV: each malformed or unsupported file is refused with its reason", () => {
  refused(wav({ riffSize: 1000 }), 400, /RIFF size mismatch/);
  refused(wav({ channels: 0 }), 400, /0 channels/);
  refused(wav({ bits: 8 }), 415, /8-bit PCM/);
  refused(wav({ rate: 96_000 }), 415, /96000 Hz is above 48000 Hz/);
  refused(wav({ channels: 6 }), 415, /6 channels/);
  refused(wav({ dataSize: 2_000_000_000, riffSize: 2_000_000_100 }), 400, /RIFF size mismatch|claims/);
  refused(wav({ dataSize: 2_000_000_000 }), 400, /data chunk claims 2000000000 bytes/);
  refused(wav({ truncate: 1 }), 400, /RIFF size mismatch/);
  const odd = wav({ frames: 10 });
  new DataView(odd.buffer).setUint32(40, 19, true); // data size not whole frames
  new DataView(odd.buffer).setUint32(4, 4 + 24 + 8 + 19 + 1, true);
  refused(odd.subarray(0, 44 + 19 + 1), 400, /truncated data|whole number/);
  refused(wav({ tag: 2 }), 415, /MS ADPCM/);
  refused(new Uint8Array([1, 2, 3]), 400, /shorter than the 12-byte RIFF header/);
  refused(wav({ frames: 0 }), 400, /no samples/);
  refused(wav({ frames: 48_000 * 61 }), 413, /limit is 60000 ms/);
});
