/**
 * Logits of an ONNX CTC model (onnxruntime-node, the runtime Parley uses) for a few 16 kHz mono WAVs, normalized
 * exactly as Wav2Vec2FeatureExtractor does (zero mean, unit variance), written as JSON for a Python comparison
 * (onnx_to_ckpt.py --check): proves that a checkpoint rebuilt from the graph computes the same function.
 *
 *   deno run -A models/train/onnx_logits.ts <model.onnx> <out.json> a.wav b.wav ...
 */
import * as ort from "onnxruntime-node";

function readWav(path: string): Float32Array {
  const b = Deno.readFileSync(path);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let o = 12;
  while (o + 8 <= b.length) {
    const id = new TextDecoder().decode(b.subarray(o, o + 4));
    const size = v.getUint32(o + 4, true);
    if (id === "data") {
      const n = Math.floor(size / 2);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = v.getInt16(o + 8 + 2 * i, true) / 32768;
      return out;
    }
    o += 8 + size + (size & 1);
  }
  throw new Error(`${path}: no data chunk`);
}

const [modelPath, outPath, ...wavs] = Deno.args;
const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1 });
const out: Record<string, { dims: number[]; data: number[] }> = {};
for (const w of wavs) {
  const x = readWav(w);
  let mean = 0;
  for (const s of x) mean += s;
  mean /= x.length;
  let variance = 0;
  for (const s of x) variance += (s - mean) ** 2;
  variance /= x.length;
  const sd = Math.sqrt(variance + 1e-7);
  const norm = x.map((s) => (s - mean) / sd);
  const r = await session.run({ input_values: new ort.Tensor("float32", norm, [1, norm.length]) });
  const l = r.logits;
  out[w] = { dims: [...l.dims], data: Array.from(l.data as Float32Array) };
}
Deno.writeTextFileSync(outPath, JSON.stringify(out));
console.log(`wrote ${outPath} (${wavs.length} files)`);
