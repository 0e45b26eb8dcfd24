/** Per-frame arithmetic of the room: energy and the switch crossfade. Pure functions, no allocation per call. */
import { FRAME_SAMPLES } from "../session/outbound_audio.ts";

/** Root mean square of a frame (Int16 units). */
export function rms(samples: Int16Array): number {
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
  return samples.length ? Math.sqrt(sum / samples.length) : 0;
}

/**
 * Equal-power crossfade gains for a fade of `totalSamples`: sample k of the fade takes cos·from + sin·to with
 * the angle at the middle of the sample. Equal power (not linear) because the two sources are uncorrelated
 * (a voice and a track): a linear fade would dip ~3 dB at its middle.
 */
export function fadeGains(totalSamples: number): { out: Float32Array; in: Float32Array } {
  const out = new Float32Array(totalSamples), inn = new Float32Array(totalSamples);
  for (let k = 0; k < totalSamples; k++) {
    const a = (Math.PI / 2) * ((k + 0.5) / totalSamples);
    out[k] = Math.cos(a);
    inn[k] = Math.sin(a);
  }
  return { out, in: inn };
}

/**
 * Write one frame of a crossfade into `dst`: frame `index` (0-based) of a fade whose gains are `g`, from frame
 * `a` to frame `b`, clipped to Int16.
 */
export function crossfadeInto(
  dst: Int16Array,
  a: Int16Array,
  b: Int16Array,
  g: { out: Float32Array; in: Float32Array },
  index: number,
): Int16Array {
  const base = index * FRAME_SAMPLES;
  for (let i = 0; i < FRAME_SAMPLES; i++) {
    const v = a[i] * g.out[base + i] + b[i] * g.in[base + i];
    dst[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : Math.round(v);
  }
  return dst;
}
