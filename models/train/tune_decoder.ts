/**
 * Tunes the beam decoder's LM weight (alpha), word bonus (beta) and out-of-lexicon score on the DEV split
 * (held-out sentences + voices, disjoint from the committed eval set) and writes
 * models/parley-asr-en/decoder_config.json. Logits come from the exported ONNX model via Transformers.js.
 *
 *   deno run -A models/train/tune_decoder.ts [--n 300] [--beam 64] [--model <dir>] [--lm a.json --lm b.json --no-write]
 *     [--dev data/dev:75,data-flite/dev]
 *
 * --dev: dev sets under work/, comma-separated "dir/name[:first N]" as train.py's --dev-data (default: the first --n
 * of data/dev, espeak-ng only); e.g. espeak-ng and flite dev together when the model must serve both. Every
 * utterance weighs by its words, so pick equal-sized sets to weigh the voices equally.
 *
 * Several --lm files are each tuned (to compare LMs on the same logits); only the model folder's own lm.json
 * result is written.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { basename, dirname, resolve } from "node:path";
import { AutoModelForCTC, AutoProcessor, env } from "@huggingface/transformers";
import { CtcDecoder } from "../../origin/asr/ctc_decoder.ts";
import { editDistance as ed } from "../../origin/asr/error_rate.ts";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const argIdx = Deno.args.indexOf("--model");
const MODEL_DIR = argIdx >= 0
  ? resolve(Deno.args[argIdx + 1])
  : fileURLToPath(new URL("../parley-asr-en", import.meta.url));
const nIdx = Deno.args.indexOf("--n");
const N = nIdx >= 0 ? Number(Deno.args[nIdx + 1]) : 300;
const arg = (name: string) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
};
const BEAM = Number(arg("--beam") ?? 64);
const LM_FILES = Deno.args.flatMap((a, i) => a === "--lm" ? [Deno.args[i + 1]] : []);
if (!LM_FILES.length) LM_FILES.push(`${MODEL_DIR}/lm.json`);
const WRITE = !Deno.args.includes("--no-write");

env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = dirname(MODEL_DIR) + "/";
const processor = await AutoProcessor.from_pretrained(basename(MODEL_DIR));
const model = await AutoModelForCTC.from_pretrained(basename(MODEL_DIR), {
  session_options: { intraOpNumThreads: 1 },
});

const DEV = (arg("--dev") ?? `data/dev:${N}`).split(",").map((spec) => {
  const [name, n] = spec.split(":");
  return { name, n: n === undefined ? Infinity : Number(n) };
});

const items: Array<{ ref: string; logits: Float32Array; frames: number; V: number }> = [];
for (const { name, n: limit } of DEV) {
  const rows = readFileSync(`${HERE}work/${name}.tsv`, "utf8").trim().split("\n").map((l) => l.split("\t"))
    .slice(0, limit);
  const bin = readFileSync(`${HERE}work/${name}.bin`);
  const i16 = new Int16Array(bin.buffer, bin.byteOffset, bin.byteLength / 2);
  for (const [off, n, text] of rows) {
    const pcm = new Float32Array(Number(n));
    for (let i = 0; i < pcm.length; i++) pcm[i] = i16[Number(off) + i] / 32768;
    const inp = await processor(pcm);
    const out = await model({ input_values: inp.input_values });
    const [, frames, V] = out.logits.dims;
    items.push({ ref: text, logits: new Float32Array(out.logits.data), frames, V });
  }
}
await model.dispose();

const base = await CtcDecoder.load(MODEL_DIR);
const vocabMap = JSON.parse(readFileSync(`${MODEL_DIR}/vocab.json`, "utf8"));
let gw = 0, wn = 0;
for (const it of items) {
  gw += ed(it.ref.split(" "), base.greedy(it.logits, it.frames, it.V).split(" ").filter(Boolean));
  wn += it.ref.split(" ").length;
}
console.log(`dev ${DEV.map((d) => d.name).join(" + ")}: ${items.length} utts, greedy WER ${(100 * gw / wn).toFixed(2)}%`);
const ALPHAS = (arg("--alphas") ?? "0.8,0.9,1,1.1,1.2").split(",").map(Number);
const BETAS = (arg("--betas") ?? "-0.5,0,0.5,1").split(",").map(Number);
const UNKS = (arg("--unks") ?? "-Infinity,-14").split(",").map(Number);
type Setting = { wer: number; alpha: number; beta: number; unkScore: number };
let best: Setting = { wer: Infinity, alpha: 0, beta: 0, unkScore: -Infinity };
for (const lmFile of LM_FILES) {
  const lm = JSON.parse(readFileSync(lmFile, "utf8"));
  const dec = CtcDecoder.fromData(vocabMap, lm);
  let lmBest: Setting = { wer: Infinity, alpha: 0, beta: 0, unkScore: -Infinity };
  const t0 = performance.now();
  for (const alpha of ALPHAS) {
    for (const beta of BETAS) {
      for (const unkScore of UNKS) {
        let we = 0;
        for (const it of items) {
          const h = dec.decode(it.logits, it.frames, it.V, { alpha, beta, unkScore, beamWidth: BEAM })[0].text;
          we += ed(it.ref.split(" "), h.split(" ").filter(Boolean));
        }
        const wer = we / wn;
        if (wer < lmBest.wer) lmBest = { wer, alpha, beta, unkScore };
        if (Deno.args.includes("--verbose")) {
          console.log(`alpha ${alpha} beta ${beta} unk ${unkScore}: WER ${(100 * wer).toFixed(2)}%`);
        }
      }
    }
  }
  const ms = (performance.now() - t0) / (ALPHAS.length * BETAS.length * UNKS.length);
  console.log(
    `${lmFile} (${lm.type}, ${lm.words.length} words): best dev WER ${(100 * lmBest.wer).toFixed(2)}% at`,
    `alpha ${lmBest.alpha} beta ${lmBest.beta} unk ${lmBest.unkScore} (beam ${BEAM}, ${ms.toFixed(0)} ms per pass)`,
  );
  if (lmFile === `${MODEL_DIR}/lm.json`) best = lmBest;
}
if (WRITE && Number.isFinite(best.wer)) {
  writeFileSync(
    `${MODEL_DIR}/decoder_config.json`,
    JSON.stringify(
      {
        alpha: best.alpha,
        beta: best.beta,
        unkScore: Number.isFinite(best.unkScore) ? best.unkScore : null,
        tuned_on: `dev split (${DEV.map((d) => `${d.name}${Number.isFinite(d.n) ? `:${d.n}` : ""}`).join(" + ")}: ${items.length} utterances, held-out sentences, not the eval set)`,
        beam_width: BEAM,
        dev_wer_beam: Number(best.wer.toFixed(4)),
        dev_wer_greedy: Number((gw / wn).toFixed(4)),
      },
      null,
      2,
    ) + "\n",
  );
}
