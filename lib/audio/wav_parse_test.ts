import assert from "node:assert/strict";
import { parseWavHeader, wavToMonoFloat } from "./wav_parse.ts";
import { InvalidAudioError, UnsupportedAudioError } from "./errors.ts";
import { buildWav, type WavSpec } from "./test_audio.ts";

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
