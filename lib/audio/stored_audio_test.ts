import assert from "node:assert/strict";
import { encodeStoredAudio, StoredAudioDecoder, StoredAudioError } from "./stored_audio.ts";
import { floatToInt16 } from "./resampler.ts";
import { speech } from "./test_audio.ts";

function bytesOf(x: Int16Array): Uint8Array {
  const out = new Uint8Array(x.length * 2);
  const dv = new DataView(out.buffer);
  x.forEach((v, i) => dv.setInt16(i * 2, v, true));
  return out;
}

function samplesOf(b: Uint8Array): Int16Array {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return Int16Array.from({ length: b.length >> 1 }, (_, i) => dv.getInt16(i * 2, true));
}

/** Best normalised cross-correlation within ±maxLag samples, and its lag. */
function bestCorrelation(a: Int16Array, b: Int16Array, maxLag: number): { r: number; lag: number } {
  let best = { r: -1, lag: 0 };
  for (let lag = -maxLag; lag <= maxLag; lag++) {
    let xy = 0, xx = 0, yy = 0;
    for (let i = maxLag; i < a.length - maxLag; i++) {
      xy += a[i] * b[i + lag];
      xx += a[i] * a[i];
      yy += b[i + lag] * b[i + lag];
    }
    const r = xy / Math.sqrt(xx * yy);
    if (r > best.r) best = { r, lag };
  }
  return best;
}

Deno.test("stored audio: Opus chunks decode to exactly their sample count, aligned, at 22050/16000/48000 Hz", async () => {
  const dec = new StoredAudioDecoder();
  try {
    for (const rate of [22050, 16000, 48000]) {
      const pcm = floatToInt16(await speech(rate));
      const stored = await encodeStoredAudio(bytesOf(pcm), rate, "opus");
      assert.equal(stored.codec, "opus");
      assert.equal(stored.samples, pcm.length);
      const perSecond = stored.bytes.length / (pcm.length / rate);
      assert.ok(perSecond < 4000, `${rate} Hz: ${Math.round(perSecond)} B/s stored`);
      const back = samplesOf(await dec.decode(stored, rate));
      assert.equal(back.length, pcm.length, `${rate} Hz: length`);
      const { r, lag } = bestCorrelation(pcm, back, 4);
      assert.ok(r > 0.9, `${rate} Hz: correlation ${r}`);
      // Aligned to within 0.1 ms (libopus' own delay is a sample or two off its 312-sample pre-skip).
      assert.ok(Math.abs(lag) / rate <= 0.0001, `${rate} Hz: lag ${lag}`);
    }
  } finally {
    dec.close();
  }
});

Deno.test("stored audio: one decoder serves chunk after chunk; PCM passes through; empty and odd inputs", async () => {
  const rate = 22050;
  const pcm = floatToInt16(await speech(rate));
  const a = await encodeStoredAudio(bytesOf(pcm.subarray(0, 5000)), rate, "opus");
  const b = await encodeStoredAudio(bytesOf(pcm.subarray(5000)), rate, "opus");
  const dec = new StoredAudioDecoder();
  try {
    assert.equal((await dec.decode(a, rate)).length, 10000);
    assert.equal((await dec.decode(b, rate)).length, (pcm.length - 5000) * 2);
    const raw = bytesOf(pcm.subarray(0, 100));
    assert.equal(await dec.decode({ codec: "pcm", bytes: raw, samples: null }, rate), raw);
    const empty = await encodeStoredAudio(new Uint8Array(0), rate, "opus");
    assert.deepEqual([empty.codec, empty.bytes.length, empty.samples], ["pcm", 0, 0]);
    // A chunk shorter than one Opus frame still comes back at its length.
    const tiny = await encodeStoredAudio(bytesOf(pcm.subarray(2000, 2100)), rate, "opus");
    assert.equal((await dec.decode(tiny, rate)).length, 200);
    await assert.rejects(
      dec.decode({ codec: "flac", bytes: raw, samples: 50 }, rate),
      StoredAudioError,
    );
    const corrupt = b.bytes.slice();
    corrupt.fill(0x55, 200, 400);
    await assert.rejects(dec.decode({ ...b, bytes: corrupt }, rate), StoredAudioError);
    // After a corrupt chunk the decoder starts the next chunk fresh.
    assert.equal((await dec.decode(a, rate)).length, 10000);
  } finally {
    dec.close();
    dec.close(); // idempotent
  }
  await assert.rejects(dec.decode(a, rate), /closed/);
});
