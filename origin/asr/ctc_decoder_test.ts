import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CtcDecoder, loadCtcRecognizer } from "./ctc_decoder.ts";
import { readWav } from "../pipeline/wav.ts";
import { int16ToFloat } from "../../lib/audio/resampler.ts";

const VOCAB = ["<pad>", "|", "'", ..."abcdefghijklmnopqrstuvwxyz", "<unk>"];
const VOCAB_MAP = Object.fromEntries(VOCAB.map((t, i) => [t, i]));
const V = VOCAB.length;

/** Tiny LM: a handful of words with unigram log-probs and one strong bigram. */
function tinyLm(words: string[], bigrams: Array<[string, string, number]> = []) {
  const idx = new Map(words.map((w, i) => [w, i]));
  return {
    words,
    unigram: words.map(() => Math.log(1 / words.length)),
    backoff: new Array(words.length + 1).fill(Math.log(0.5)),
    bigram_ctx: bigrams.map(([a]) => (a === "<s>" ? words.length : idx.get(a)!)),
    bigram_word: bigrams.map(([, b]) => idx.get(b)!),
    bigram_logp: bigrams.map(([, , p]) => p),
  };
}

/**
 * Synthetic logits: one "frame spec" per frame, each a map token -> probability (rest spread over the others).
 * Returned as raw logits (log of probabilities).
 */
function frames(spec: Array<Record<string, number>>): Float32Array {
  const out = new Float32Array(spec.length * V);
  spec.forEach((f, t) => {
    const given = Object.values(f).reduce((a, b) => a + b, 0);
    const rest = Math.max(1e-6, 1 - given) / (V - Object.keys(f).length);
    for (let v = 0; v < V; v++) out[t * V + v] = Math.log(f[VOCAB[v]] ?? rest);
  });
  return out;
}

/** Clean frames spelling `text` (space -> |), each char followed by a blank frame. */
function spell(text: string, p = 0.9): Array<Record<string, number>> {
  const spec: Array<Record<string, number>> = [{ "<pad>": p }];
  for (const ch of text) {
    spec.push({ [ch === " " ? "|" : ch]: p });
    spec.push({ "<pad>": p });
  }
  return spec;
}

Deno.test("greedy merges repeats, keeps blank-separated doubles, maps | to space", () => {
  const d = CtcDecoder.fromData(VOCAB_MAP, null);
  const spec: Array<Record<string, number>> = [
    { h: 0.9 },
    { h: 0.9 },
    { e: 0.9 },
    { l: 0.9 },
    { "<pad>": 0.9 },
    { l: 0.9 },
    { l: 0.9 },
    { o: 0.9 },
    { "|": 0.9 },
    { "|": 0.9 },
    { w: 0.9 },
  ];
  assert.equal(d.greedy(frames(spec), spec.length, V), "hello w");
});

Deno.test("beam search without LM agrees with greedy on clean input", () => {
  const d = CtcDecoder.fromData(VOCAB_MAP, null);
  const spec = spell("good morning");
  const logits = frames(spec);
  const hyps = d.decode(logits, spec.length, V, { beamWidth: 8 });
  assert.equal(hyps[0].text, "good morning");
  assert.equal(d.greedy(logits, spec.length, V), "good morning");
  assert.ok(Number.isFinite(hyps[0].score));
});

Deno.test("accepts log-probs as well as raw logits (same result)", () => {
  const d = CtcDecoder.fromData(VOCAB_MAP, tinyLm(["good", "morning"]));
  const spec = spell("good morning");
  const raw = frames(spec).map((x) => x + 3.7); // shifted logits: same softmax
  const a = d.decode(raw, spec.length, V);
  const b = d.decode(frames(spec), spec.length, V);
  assert.equal(a[0].text, b[0].text);
  assert.ok(Math.abs(a[0].score - b[0].score) < 1e-3);
});

Deno.test("lexicon constraint repairs a misspelled word that greedy gets wrong", () => {
  const d = CtcDecoder.fromData(VOCAB_MAP, tinyLm(["the", "cat", "sat", "cut"]));
  // "the cat": the 'a' frame is ambiguous, greedy reads 'x' (not a word) slightly more often
  const spec = spell("the c");
  spec.push({ x: 0.5, a: 0.45 });
  spec.push({ "<pad>": 0.9 }, { t: 0.9 }, { "<pad>": 0.9 });
  const logits = frames(spec);
  assert.equal(CtcDecoder.fromData(VOCAB_MAP, null).greedy(logits, spec.length, V), "the cxt");
  const hyps = d.decode(logits, spec.length, V, { beamWidth: 8 });
  assert.equal(hyps[0].text, "the cat");
});

Deno.test("bigram LM picks the likelier word when acoustics are ambiguous, n-best is ordered", () => {
  const lm = tinyLm(["i", "sat", "set", "down", "table"], [["i", "sat", Math.log(0.6)], [
    "i",
    "set",
    Math.log(0.01),
  ]]);
  const d = CtcDecoder.fromData(VOCAB_MAP, lm, { alpha: 1, beta: 0 });
  const spec = spell("i s");
  spec.push({ e: 0.48, a: 0.47 });
  spec.push(...spell("t down").slice(0));
  const logits = frames(spec);
  const hyps = d.decode(logits, spec.length, V, { beamWidth: 16, nBest: 3 });
  assert.equal(hyps[0].text, "i sat down");
  assert.ok(hyps.some((h) => h.text === "i set down"));
  for (let i = 1; i < hyps.length; i++) assert.ok(hyps[i - 1].score >= hyps[i].score);
});

Deno.test("trigram LM: two words of context decide what one word of context cannot", () => {
  // "the cat sat" vs "the cat set": the bigram favours "set" after "cat"; the trigram "the cat sat" overrides it.
  const words = ["the", "a", "cat", "sat", "set"];
  const id = (w: string) => words.indexOf(w);
  const base = tinyLm(words, [["cat", "set", Math.log(0.6)], ["cat", "sat", Math.log(0.05)]]);
  const spec = spell("the cat s");
  spec.push({ e: 0.48, a: 0.47 });
  spec.push(...spell("t"));
  const logits = frames(spec);
  const bigramOnly = CtcDecoder.fromData(VOCAB_MAP, base, { alpha: 1, beta: 0 });
  assert.equal(bigramOnly.decode(logits, spec.length, V)[0].text, "the cat set");
  const withTrigram = CtcDecoder.fromData(VOCAB_MAP, {
    ...base,
    trigram_u: [id("the")],
    trigram_v: [id("cat")],
    trigram_word: [id("sat")],
    trigram_logp: [Math.log(0.9)],
    trigram_backoff_u: [id("the")],
    trigram_backoff_v: [id("cat")],
    trigram_backoff: [Math.log(0.1)],
  }, { alpha: 1, beta: 0 });
  assert.equal(withTrigram.decode(logits, spec.length, V)[0].text, "the cat sat");
  // another first word: no stored trigram, so the (unchanged) bigram decides again
  const spec2 = spell("a cat s");
  spec2.push({ e: 0.48, a: 0.47 });
  spec2.push(...spell("t"));
  assert.equal(withTrigram.decode(frames(spec2), spec2.length, V)[0].text, "a cat set");
});

Deno.test("out-of-lexicon words: spelled with the unk penalty, or the greedy fallback when forbidden", () => {
  const lm = tinyLm(["alpha", "beta"]);
  const spec = spell("alpha zq beta");
  const logits = frames(spec);
  const d = CtcDecoder.fromData(VOCAB_MAP, lm, { unkScore: -5 });
  assert.equal(d.decode(logits, spec.length, V)[0].text, "alpha zq beta");
  const strict = CtcDecoder.fromData(VOCAB_MAP, lm, { unkScore: -Infinity });
  const only = spell("zq");
  const hyps = strict.decode(frames(only), only.length, V);
  assert.equal(hyps[0].text, "zq"); // nothing in the lexicon fits: greedy fallback, not an empty result
});

Deno.test("empty / all-blank input decodes to empty text", () => {
  const d = CtcDecoder.fromData(VOCAB_MAP, tinyLm(["alpha"]));
  const spec: Array<Record<string, number>> = [{ "<pad>": 0.99 }, { "<pad>": 0.99 }];
  assert.equal(d.decode(frames(spec), 2, V)[0].text, "");
  assert.equal(d.decode(new Float32Array(0), 0, V)[0].text, "");
});

// ---------------------------------------------------------------------------------------------- real model
const MODEL_DIR = fileURLToPath(new URL("../../models/parley-asr-en", import.meta.url));
const EVAL_DIR = fileURLToPath(new URL("../../models/eval", import.meta.url));
const readWav16 = (path: string) => int16ToFloat(readWav(path).samples);

Deno.test({
  name:
    "real bundled model: decoder runs on Transformers.js logits, fast, and agrees with the pipeline's greedy",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const rec = await loadCtcRecognizer(MODEL_DIR);
    try {
      const manifest = readFileSync(`${EVAL_DIR}/manifest.tsv`, "utf8").trim().split("\n").slice(1)
        .map((l) => l.split("\t"));
      const [file, , ref] = manifest[0];
      const pcm = readWav16(`${EVAL_DIR}/${file}`);
      const r = await rec.transcribe(pcm);
      assert.ok(r.frames > 10);
      assert.ok(r.hypotheses.length >= 1 && r.hypotheses[0].text.length > 0, `empty result for "${ref}"`);

      // the pipeline's own greedy CTC decode (tokenizer.json CTC decoder) must match our greedy
      const { env, pipeline } = await import("@huggingface/transformers");
      env.allowRemoteModels = false;
      env.allowLocalModels = true;
      const prev = env.localModelPath;
      env.localModelPath = fileURLToPath(new URL("../../models/", import.meta.url));
      try {
        const asr = await pipeline("automatic-speech-recognition", "parley-asr-en", {
          session_options: { intraOpNumThreads: 1 },
        });
        // deno-lint-ignore no-explicit-any
        const out = await (asr as any)(pcm) as { text: string };
        assert.equal(out.text.replace(/\s+/g, " ").trim(), r.greedy);
        await asr.dispose();
      } finally {
        env.localModelPath = prev;
      }

      // ~5 s of audio end to end (timing is measured in bench/eval_asr.ts, not asserted here)
      const five = new Float32Array(5 * 16000);
      for (let i = 0; i < five.length; i += pcm.length) {
        five.set(pcm.subarray(0, Math.min(pcm.length, five.length - i)), i);
      }
      const r5 = await rec.transcribe(five);
      assert.ok(r5.frames >= 160);
    } finally {
      await rec.dispose();
    }
  },
});

Deno.test({
  name: "real bundled model: beam decode of 5 s of spelled logits with noise recovers the sentence",
  async fn() {
    const d = await CtcDecoder.load(MODEL_DIR);
    // realistic-looking logits: a spelled sentence with noise, padded to 167 frames
    const text = "we went down to the river and sat on the bank all afternoon";
    const spec = spell(text, 0.8);
    while (spec.length < 167) spec.push({ "<pad>": 0.95 });
    const logits = frames(spec);
    let seed = 7;
    for (let i = 0; i < logits.length; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      logits[i] += (seed / 2 ** 32 - 0.5) * 1.0;
    }
    // Speed is a benchmark figure (bench/eval_asr.ts reports the decode time), not a unit-test assertion.
    const hyps = d.decode(logits, spec.length, V, { beamWidth: 16 });
    assert.equal(hyps[0].text, text);
  },
});

Deno.test({
  name: "real bundled model: the appended silence keeps the last word of audio that stops right after it",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // Parley's own voice (WASM espeak-ng, en-us) ends its audio at the last phoneme; a held-out sentence
    const { EspeakEngine } = await import("../tts/espeak_engine.ts");
    const { resampleAll } = await import("../../lib/audio/resampler.ts");
    const tts = await EspeakEngine.load("en-us");
    const s = await tts.synthesize("good providers and bad providers");
    await tts.close();
    const pcm = resampleAll(s.pcm, s.sampleRate, 16000);
    const bare = await loadCtcRecognizer(MODEL_DIR, { tailPadMs: 0 });
    const padded = await loadCtcRecognizer(MODEL_DIR);
    try {
      // measured with the stage-2 model: "… and bad provider" without the padding (of ten held-out sentences,
      // the one whose last sound it cuts; stage 1 cut "… a trillion a bill" from another)
      const lastWord = async (rec: typeof bare) =>
        (await rec.transcribe(pcm)).hypotheses[0].text.split(" ").at(-1);
      assert.notEqual(await lastWord(bare), "providers");
      assert.equal(await lastWord(padded), "providers");
    } finally {
      await bare.dispose();
      await padded.dispose();
    }
  },
});
