import assert from "node:assert/strict";
import { BatchingVad, newVadState, VAD_CHUNK_SAMPLES } from "./vad.ts";
import { SileroVad } from "./silero_vad.ts";
import { Segmenter, type SegmentEvent } from "./segmenter.ts";
import { readWav } from "./wav.ts";
import { int16ToFloat, resampleAll } from "../../lib/audio/resampler.ts";

const fixture = (name: string) => new URL(`../../tests/fixtures/speech/${name}`, import.meta.url);

async function probs(vad: SileroVad, x: Float32Array): Promise<number[]> {
  const st = newVadState();
  const b = new BatchingVad((items) => vad.runSequences(items));
  const out: number[] = [];
  for (let i = 0; i + VAD_CHUNK_SAMPLES <= x.length; i += VAD_CHUNK_SAMPLES) {
    out.push(await b.evaluate(st, x.slice(i, i + VAD_CHUNK_SAMPLES)));
  }
  return out;
}

function noise(n: number, amp: number, seed = 1): Float32Array {
  let s = seed;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    x[i] = ((s / 0x7fffffff) * 2 - 1) * amp;
  }
  return x;
}

function segmentAll(x: Float32Array, p: number[], cfg = {}): SegmentEvent[] {
  const seg = new Segmenter(cfg);
  const ev: SegmentEvent[] = [];
  p.forEach((pi, i) => ev.push(...seg.push(x.subarray(i * 512, (i + 1) * 512), pi)));
  ev.push(...seg.flush());
  return ev;
}

Deno.test("Silero VAD + segmenter: two espeak phrases give two segments at the right times; silence and noise none", async () => {
  const vad = await SileroVad.load();
  try {
    const wav = readWav(fixture("two_phrases_16k.wav"));
    assert.equal(wav.sampleRate, 16000);
    const x = int16ToFloat(wav.samples);
    const p = await probs(vad, x);
    const ev = segmentAll(x, p);
    const ends = ev.filter((e) => e.type === "end");
    assert.equal(ends.length, 2, JSON.stringify(ev.map((e) => e.type)));
    // phrase 1 at 0.50–1.62 s, phrase 2 at 2.42–3.74 s (see fixture); allow VAD slack.
    const s = (i: number) => ends[i].type === "end" ? [ends[i].speechStart / 16, ends[i].speechEnd / 16] : [];
    const [a0, a1] = s(0), [b0, b1] = s(1);
    assert.ok(a0 > 350 && a0 < 750, `seg1 start ${a0}`);
    assert.ok(a1 > 1300 && a1 < 1900, `seg1 end ${a1}`);
    assert.ok(b0 > 2250 && b0 < 2650, `seg2 start ${b0}`);
    assert.ok(b1 > 3400 && b1 < 4000, `seg2 end ${b1}`);
    for (const e of ends) if (e.type === "end") assert.ok(e.speechStart - e.audioStart >= 0.25 * 16000 - 1);

    // silence and white noise: no segment
    const quiet = new Float32Array(16000 * 2);
    assert.equal(segmentAll(quiet, await probs(vad, quiet)).length, 0);
    const hiss = noise(16000 * 3, 0.05);
    const pn = await probs(vad, hiss);
    assert.ok(Math.max(...pn) < 0.5, `noise max p ${Math.max(...pn)}`);
    assert.equal(segmentAll(hiss, pn).length, 0);

    // speech buried in moderate noise is still found
    const n7 = noise(x.length, 0.01, 7);
    const noisy = x.map((v, i) => v + n7[i]);
    const ends2 = segmentAll(noisy, await probs(vad, noisy)).filter((e) => e.type === "end");
    assert.equal(ends2.length, 2);
  } finally {
    await vad.close();
  }
});

Deno.test("48 kHz fixture resampled to 16 kHz is detected as one segment; batched VAD equals per-stream", async () => {
  const vad = await SileroVad.load();
  try {
    const wav = readWav(fixture("one_phrase_48k.wav"));
    const x = resampleAll(wav.samples, 48000, 16000);
    const p = await probs(vad, x);
    assert.equal(segmentAll(x, p).filter((e) => e.type === "end").length, 1);
    // two streams batched together give the same probabilities as one alone
    const b = new BatchingVad((items) => vad.runSequences(items));
    const s1 = newVadState(), s2 = newVadState();
    const both: Array<[number, number]> = [];
    for (let i = 0; i + 512 <= x.length; i += 512) {
      const c = x.slice(i, i + 512);
      both.push(await Promise.all([b.evaluate(s1, c), b.evaluate(s2, new Float32Array(512))]));
    }
    both.forEach(([a], i) => assert.ok(Math.abs(a - p[i]) < 1e-4, `chunk ${i}: ${a} vs ${p[i]}`));
    // a stream that fell behind sends all its chunks at once: same probabilities, same final state
    const s3 = newVadState();
    const chunks = [];
    for (let i = 0; i + 512 <= x.length; i += 512) chunks.push(x.slice(i, i + 512));
    const many = await b.evaluateMany(s3, chunks);
    assert.equal(many.length, p.length);
    many.forEach((a, i) => assert.ok(Math.abs(a - p[i]) < 1e-4, `seq chunk ${i}: ${a} vs ${p[i]}`));
    s1.state.forEach((v, i) => assert.ok(Math.abs(v - s3.state[i]) < 1e-4));
    assert.ok(Math.max(...both.map(([, z]) => z)) < 0.5);
  } finally {
    await vad.close();
  }
});

Deno.test("segmenter: min speech, hysteresis, end-of-speech silence, forced cut at the quietest point", () => {
  const chunk = new Float32Array(512).fill(0.1);
  const quietChunk = new Float32Array(512).fill(0.001);
  // blip of 2 chunks (64 ms) → discarded
  let seg = new Segmenter({ minSpeechMs: 250 });
  let ev: SegmentEvent[] = [];
  for (const p of [0, 0.9, 0.9, 0.1, ...Array(20).fill(0)]) ev.push(...seg.push(chunk, p));
  assert.deepEqual(ev.map((e) => e.type), ["start", "discard"]);
  // hysteresis: p between negThreshold and threshold keeps speech going; silence 400 ms ends it
  seg = new Segmenter({ silenceMs: 400 });
  const at: Array<[string, number]> = [];
  const ps = [0.9, 0.9, ...Array(30).fill(0.4), ...Array(12).fill(0.1), 0.1];
  ps.forEach((p, i) => seg.push(chunk, p).forEach((e) => at.push([e.type, i])));
  // 400 ms = 12.5 chunks → ends on the 13th silent chunk (index 2+30+12 = 44)
  assert.deepEqual(at, [["start", 1], ["end", 44]]);
  // forced cut: 20 s max, one quiet chunk at ~16 s is where it cuts
  seg = new Segmenter({ maxSegmentMs: 20000, cutSearchMs: 6000 });
  ev = [];
  const n = Math.ceil((22 * 16000) / 512);
  const quietAt = Math.round((16 * 16000) / 512);
  for (let i = 0; i < n; i++) {
    ev.push(...seg.push(i === quietAt ? quietChunk : chunk, i === quietAt ? 0.4 : 0.9));
  }
  const ends = ev.filter((e) => e.type === "end");
  assert.equal(ends.length, 1);
  const e0 = ends[0];
  assert.ok(e0.type === "end" && e0.forced);
  if (e0.type === "end") {
    const cutSec = (e0.audioStart + e0.audio.length) / 16000;
    assert.ok(Math.abs(cutSec - (quietAt * 512 + 256) / 16000) < 0.001, `cut at ${cutSec}`);
  }
  assert.ok(seg.active, "speech continues in a new segment");
  const fl = seg.flush();
  assert.equal(fl.length, 1);
  assert.ok(fl[0].type === "end" && fl[0].segmentId === 2);
});
