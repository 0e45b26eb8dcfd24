/**
 * Tunes the beam decoder's LM weight (alpha), word bonus (beta) and out-of-lexicon score on the DEV split
 * (held-out sentences + voices, disjoint from the committed eval set) and writes
 * models/parley-asr-en/decoder_config.json. Logits come from the exported ONNX model via Transformers.js.
 *
 *   deno run -A models/train/tune_decoder.ts [--n 80] [--beam 16] [--lm other_lm.json --no-write]
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { AutoModelForCTC, AutoProcessor, env } from "@huggingface/transformers";
import { CtcDecoder } from "../../origin/asr/ctc_decoder.ts";
import { editDistance as ed } from "../../origin/asr/error_rate.ts";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const MODEL_DIR = fileURLToPath(new URL("../parley-asr-en", import.meta.url));
const nIdx = Deno.args.indexOf("--n");
const N = nIdx >= 0 ? Number(Deno.args[nIdx + 1]) : 80;
const arg = (name: string) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
};
const BEAM = Number(arg("--beam") ?? 16);
const LM_FILE = arg("--lm") ?? `${MODEL_DIR}/lm.json`;
const WRITE = !Deno.args.includes("--no-write");

env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = fileURLToPath(new URL("../", import.meta.url));
const processor = await AutoProcessor.from_pretrained("parley-asr-en");
const model = await AutoModelForCTC.from_pretrained("parley-asr-en", { session_options: { intraOpNumThreads: 1 } });

const rows = readFileSync(`${HERE}work/data/dev.tsv`, "utf8").trim().split("\n").map((l) => l.split("\t")).slice(0, N);
const bin = readFileSync(`${HERE}work/data/dev.bin`);
const i16 = new Int16Array(bin.buffer, bin.byteOffset, bin.byteLength / 2);

const items: Array<{ ref: string; logits: Float32Array; frames: number; V: number }> = [];
for (const [off, n, text] of rows) {
  const pcm = new Float32Array(Number(n));
  for (let i = 0; i < pcm.length; i++) pcm[i] = i16[Number(off) + i] / 32768;
  const inp = await processor(pcm);
  const out = await model({ input_values: inp.input_values });
  const [, frames, V] = out.logits.dims;
  items.push({ ref: text, logits: new Float32Array(out.logits.data), frames, V });
}
await model.dispose();

const base = await CtcDecoder.load(MODEL_DIR);
const vocabMap = JSON.parse(readFileSync(`${MODEL_DIR}/vocab.json`, "utf8"));
const lm = JSON.parse(readFileSync(LM_FILE, "utf8"));
const dec = CtcDecoder.fromData(vocabMap, lm);
let gw = 0, wn = 0;
for (const it of items) {
  gw += ed(it.ref.split(" "), base.greedy(it.logits, it.frames, it.V).split(" ").filter(Boolean));
  wn += it.ref.split(" ").length;
}
console.log(`dev ${items.length} utts, greedy WER ${(100 * gw / wn).toFixed(2)}%`);
let best = { wer: Infinity, alpha: 0, beta: 0, unkScore: -Infinity as number };
for (const alpha of [0.2, 0.35, 0.5, 0.8]) {
  for (const beta of [0, 0.5, 1, 2]) {
    for (const unkScore of [-Infinity, -10]) {
      let we = 0;
      for (const it of items) {
        const h = dec.decode(it.logits, it.frames, it.V, { alpha, beta, unkScore, beamWidth: BEAM })[0].text;
        we += ed(it.ref.split(" "), h.split(" ").filter(Boolean));
      }
      const wer = we / wn;
      if (wer < best.wer) best = { wer, alpha, beta, unkScore };
      console.log(`alpha ${alpha} beta ${beta} unk ${unkScore}: WER ${(100 * wer).toFixed(2)}%`);
    }
  }
}
console.log("best", best, `(${lm.type}, beam ${BEAM})`);
if (WRITE) {
  writeFileSync(
    `${MODEL_DIR}/decoder_config.json`,
    JSON.stringify(
      {
        alpha: best.alpha,
        beta: best.beta,
        unkScore: Number.isFinite(best.unkScore) ? best.unkScore : null,
        tuned_on: `dev split (${items.length} held-out sentences x held-out voices, not the eval set)`,
        beam_width: BEAM,
        dev_wer_beam: Number(best.wer.toFixed(4)),
        dev_wer_greedy: Number((gw / wn).toFixed(4)),
      },
      null,
      2,
    ) + "\n",
  );
}
