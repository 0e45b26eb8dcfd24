import assert from "node:assert/strict";
import { resampleAll, StreamingResampler } from "./resampler.ts";

function sine(freq: number, rate: number, seconds: number, amp = 0.5): Float32Array {
  const n = Math.round(rate * seconds);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = amp * Math.sin((2 * Math.PI * freq * i) / rate);
  return x;
}

/** Push in 10 ms frames, as the media path does. */
function streamed(x: Float32Array, inRate: number, outRate: number, zerosPerSide?: number): Float32Array {
  const r = new StreamingResampler(inRate, outRate, { zerosPerSide });
  const frame = Math.round(inRate / 100);
  const parts: Float32Array[] = [];
  for (let i = 0; i < x.length; i += frame) {
    parts.push(r.process(x.subarray(i, Math.min(x.length, i + frame))));
  }
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function rms(x: Float32Array, from = 0, to = x.length): number {
  let s = 0;
  for (let i = from; i < to; i++) s += x[i] * x[i];
  return Math.sqrt(s / (to - from));
}

/** Amplitude of `freq` in x (single-bin DFT with a Hann window), normalised so a sine of amplitude A gives A. */
function toneAmplitude(x: Float32Array, freq: number, rate: number): number {
  let re = 0, im = 0, wsum = 0;
  for (let i = 0; i < x.length; i++) {
    const w = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (x.length - 1));
    re += w * x[i] * Math.cos((2 * Math.PI * freq * i) / rate);
    im -= w * x[i] * Math.sin((2 * Math.PI * freq * i) / rate);
    wsum += w;
  }
  return (2 * Math.hypot(re, im)) / wsum;
}

/** Dominant frequency by zero crossings (rising) over the steady part. */
function zeroCrossingFreq(x: Float32Array, rate: number): number {
  let first = -1, last = -1, n = 0;
  for (let i = 1; i < x.length; i++) {
    if (x[i - 1] < 0 && x[i] >= 0) {
      const frac = i - 1 + -x[i - 1] / (x[i] - x[i - 1]);
      if (first < 0) first = frac;
      else n++;
      last = frac;
    }
  }
  return (n * rate) / (last - first);
}

Deno.test("48k→16k keeps a 1 kHz sine's frequency and level (streamed in 10 ms frames)", () => {
  const x = sine(1000, 48000, 1, 0.5);
  const y = streamed(x, 48000, 16000);
  assert.ok(Math.abs(y.length - 16000) <= 64, `length ${y.length}`);
  const steady = y.subarray(800, 15000);
  const f = zeroCrossingFreq(steady, 16000);
  assert.ok(Math.abs(f - 1000) < 1, `frequency ${f}`);
  const level = rms(steady) / rms(x);
  assert.ok(Math.abs(20 * Math.log10(level)) < 0.1, `level change ${20 * Math.log10(level)} dB`);
});

Deno.test("48k→16k suppresses a 10 kHz tone (would alias to 6 kHz) by at least 40 dB", () => {
  const x = sine(10000, 48000, 1, 0.5);
  const y = streamed(x, 48000, 16000).subarray(800, 15000);
  const aliased = toneAmplitude(y, 6000, 16000);
  const total = rms(y) * Math.SQRT2;
  const att = 20 * Math.log10(0.5 / Math.max(aliased, total, 1e-12));
  assert.ok(att >= 40, `attenuation only ${att.toFixed(1)} dB`);
  // and naive decimation would not pass this test (sanity check of the measurement):
  const naive = new Float32Array(Math.floor(x.length / 3)).map((_, i) => x[i * 3]);
  assert.ok(toneAmplitude(naive.subarray(800, 15000), 6000, 16000) > 0.4);
});

Deno.test("22050→48k and 16k→48k keep a 1 kHz sine and add no images above the source band", () => {
  for (const [inRate, zeros] of [[22050, 16], [22050, 8], [16000, 16]]) {
    const x = sine(1000, inRate, 1, 0.5);
    const y = streamed(x, inRate, 48000, zeros);
    assert.ok(Math.abs(y.length - 48000) <= 256, `length ${y.length}`);
    const steady = y.subarray(2400, 45000);
    const f = zeroCrossingFreq(steady, 48000);
    assert.ok(Math.abs(f - 1000) < 1, `${inRate}: frequency ${f}`);
    const level = rms(steady) / rms(x);
    assert.ok(Math.abs(20 * Math.log10(level)) < 0.1, `${inRate}: level ${20 * Math.log10(level)} dB`);
    // First image of 1 kHz at inRate - 1 kHz.
    const image = toneAmplitude(steady, inRate - 1000, 48000);
    assert.ok(20 * Math.log10(0.5 / image) > 60, `${inRate}: image at ${inRate - 1000} Hz: ${image}`);
  }
});

Deno.test("streaming equals one-shot and resampleAll removes the group delay", () => {
  const x = new Float32Array(4800).map(() => Math.random() * 2 - 1);
  const a = streamed(x, 48000, 16000);
  const r = new StreamingResampler(48000, 16000);
  const b = r.process(x);
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-5);
  // an impulse comes out at the same (rounded) time
  const imp = new Float32Array(22050);
  imp[11025] = 1;
  const y = resampleAll(imp, 22050, 48000);
  assert.equal(y.length, 48000);
  let best = 0;
  for (let i = 0; i < y.length; i++) if (Math.abs(y[i]) > Math.abs(y[best])) best = i;
  assert.ok(Math.abs(best - 24000) <= 1, `impulse at ${best}`);
});

Deno.test("Int16 input is scaled to [-1, 1]", () => {
  const r = new StreamingResampler(48000, 16000);
  const x = new Int16Array(4800).fill(16384);
  const y = r.process(x);
  assert.ok(Math.abs(y[y.length - 1] - 0.5) < 1e-3);
});
