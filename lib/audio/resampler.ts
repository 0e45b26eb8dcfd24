/**
 * Streaming rational resampler (polyphase, Kaiser-windowed sinc). Converts by L/M (up by L, low-pass, down by M)
 * while keeping its filter history across calls, so 10 ms frames can be pushed one at a time without clicks at
 * frame boundaries. Used for 48 kHz → 16 kHz (ASR/VAD input) and 22050/16000 Hz → 48 kHz (synthesis output).
 *
 * Design: the prototype low-pass is designed at the upsampled rate fs·L with cutoff at 0.5·min(in, out) ·
 * `cutoffRatio`, a Kaiser window (β = 8.6 → ~85 dB stopband) and `zerosPerSide` zero crossings of the narrower
 * rate on each side. Only the taps that hit real input samples are evaluated (polyphase), so the cost is
 * `2·zerosPerSide·max(1, in/out)` multiply-adds per output sample.
 */

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

function besselI0(x: number): number {
  let sum = 1, term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 50; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-12) break;
  }
  return sum;
}

export interface ResamplerOptions {
  /** Zero crossings of the sinc (at the narrower rate) on each side of the centre. Default 16. */
  zerosPerSide?: number;
  /** Cutoff as a fraction of the narrower Nyquist frequency. Default 0.92. */
  cutoffRatio?: number;
  /** Kaiser β. Default 8.6. */
  beta?: number;
}

export class StreamingResampler {
  readonly inRate: number;
  readonly outRate: number;
  /** Upsampling factor L and downsampling factor M (in·L/M = out). */
  readonly up: number;
  readonly down: number;
  /** Group delay of the filter in output samples (constant; useful for alignment). */
  readonly delayOut: number;
  private readonly phases: Float32Array[]; // phases[p][k]: tap for input x[n - k] at phase p
  private readonly tapsPerPhase: number;
  private history: Float32Array; // last tapsPerPhase-1 input samples followed by new input
  private historyLen: number;
  /** Position of the next output in units of the upsampled grid, relative to history[0]·L. */
  private t: number;
  private readonly identity: boolean;

  constructor(inRate: number, outRate: number, options: ResamplerOptions = {}) {
    if (!(inRate > 0 && outRate > 0) || !Number.isInteger(inRate) || !Number.isInteger(outRate)) {
      throw new RangeError(`invalid resampling rates ${inRate} → ${outRate}`);
    }
    this.inRate = inRate;
    this.outRate = outRate;
    const g = gcd(inRate, outRate);
    this.up = outRate / g;
    this.down = inRate / g;
    this.identity = inRate === outRate;
    const zeros = options.zerosPerSide ?? 16;
    const cutoff = options.cutoffRatio ?? 0.92;
    const beta = options.beta ?? 8.6;
    const L = this.up, M = this.down;
    // Prototype filter at rate fs·L. Normalised cutoff (cycles/sample at the upsampled rate):
    const fc = (0.5 / Math.max(L, M)) * cutoff;
    // Half-length in upsampled samples: `zeros` zero crossings of the narrower band.
    const half = Math.ceil(zeros * Math.max(L, M));
    const len = 2 * half + 1;
    this.tapsPerPhase = Math.ceil(len / L);
    const i0b = besselI0(beta);
    const proto = new Float64Array(this.tapsPerPhase * L);
    for (let i = 0; i < len; i++) {
      const n = i - half;
      const x = 2 * fc * n;
      const sinc = n === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      const r = n / (half + 1);
      const w = besselI0(beta * Math.sqrt(Math.max(0, 1 - r * r))) / i0b;
      proto[i] = 2 * fc * sinc * w * L; // gain L compensates the zero-stuffing
    }
    this.phases = [];
    for (let p = 0; p < L; p++) {
      const taps = new Float32Array(this.tapsPerPhase);
      for (let k = 0; k < this.tapsPerPhase; k++) {
        const idx = p + k * L;
        taps[k] = idx < proto.length ? proto[idx] : 0;
      }
      this.phases.push(taps);
    }
    // Normalise each phase to unity DC gain (removes the small ripple of the window).
    for (const taps of this.phases) {
      let s = 0;
      for (const v of taps) s += v;
      if (s !== 0) { for (let k = 0; k < taps.length; k++) taps[k] /= s; }
    }
    this.delayOut = half / M;
    this.history = new Float32Array(4096);
    this.historyLen = this.tapsPerPhase - 1; // start with zeros (filter warm-up)
    this.t = (this.tapsPerPhase - 1) * L;
  }

  /** Resample a chunk. Output length varies by ±1 between calls; over time it is exactly in·out/in. */
  process(input: Float32Array | Int16Array): Float32Array {
    const scale = input instanceof Int16Array ? 1 / 32768 : 1;
    if (this.identity) {
      const out = new Float32Array(input.length);
      for (let i = 0; i < input.length; i++) out[i] = input[i] * scale;
      return out;
    }
    const need = this.historyLen + input.length;
    if (need > this.history.length) {
      const h = new Float32Array(Math.max(need, this.history.length * 2));
      h.set(this.history.subarray(0, this.historyLen));
      this.history = h;
    }
    for (let i = 0; i < input.length; i++) this.history[this.historyLen + i] = input[i] * scale;
    this.historyLen = need;
    const L = this.up, M = this.down, K = this.tapsPerPhase;
    const h = this.history;
    // Output j is at upsampled position t; input index n = floor(t / L), phase p = t mod L;
    // y = sum_k taps[p][k] * x[n - k]. Requires n < historyLen and n - (K-1) >= 0.
    const maxT = this.historyLen * L - 1;
    const count = this.t > maxT ? 0 : Math.floor((maxT - this.t) / M) + 1;
    const out = new Float32Array(count);
    let t = this.t;
    let n = Math.floor(t / L);
    let ph = t - n * L;
    const stepN = Math.floor(M / L), stepP = M - stepN * L;
    for (let j = 0; j < count; j++) {
      const taps = this.phases[ph];
      let acc = 0;
      for (let k = 0; k < K; k++) acc += taps[k] * h[n - k];
      out[j] = acc;
      n += stepN;
      ph += stepP;
      if (ph >= L) {
        ph -= L;
        n++;
      }
    }
    t += count * M;
    // Drop input samples no longer needed: keep from (floor(t/L) - (K-1)).
    const keepFrom = Math.min(this.historyLen, Math.max(0, Math.floor(t / L) - (K - 1)));
    if (keepFrom > 0) {
      h.copyWithin(0, keepFrom, this.historyLen);
      this.historyLen -= keepFrom;
      t -= keepFrom * L;
    }
    this.t = t;
    return out;
  }

  /** Flush the filter tail (feeds zeros covering the group delay). */
  flush(): Float32Array {
    return this.process(new Float32Array(Math.ceil(this.tapsPerPhase)));
  }

  reset(): void {
    this.historyLen = this.tapsPerPhase - 1;
    this.history.fill(0, 0, this.historyLen);
    this.t = (this.tapsPerPhase - 1) * this.up;
  }
}

/** Convert float PCM [-1, 1] to Int16 with clipping. */
export function floatToInt16(x: Float32Array): Int16Array {
  const out = new Int16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = Math.round(x[i] * 32767);
    out[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
  }
  return out;
}

/** Engine output as Int16: Int16 as it is, float converted (floatToInt16). */
export function asInt16(x: Int16Array | Float32Array): Int16Array {
  return x instanceof Int16Array ? x : floatToInt16(x);
}

export function int16ToFloat(x: Int16Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] / 32768;
  return out;
}

/** One-shot resampling of a whole buffer (with the filter tail flushed and the group delay removed). */
export function resampleAll(
  input: Float32Array | Int16Array,
  inRate: number,
  outRate: number,
  options: ResamplerOptions = {},
): Float32Array {
  if (inRate === outRate) return input instanceof Int16Array ? int16ToFloat(input) : input.slice();
  const r = new StreamingResampler(inRate, outRate, options);
  const a = r.process(input);
  const b = r.flush();
  const all = new Float32Array(a.length + b.length);
  all.set(a);
  all.set(b, a.length);
  const delay = Math.round(r.delayOut);
  const want = Math.round((input.length * outRate) / inRate);
  return all.slice(delay, delay + want);
}
