/** [-1, 1] float → Int16 with clipping (PocketSphinx takes 16-bit PCM); Int16 input is returned as it is. */
export function toInt16(x: Float32Array | Int16Array): Int16Array {
  if (x instanceof Int16Array) return x;
  const out = new Int16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = Math.max(-32768, Math.min(32767, Math.round(x[i] * 32767)));
  return out;
}
