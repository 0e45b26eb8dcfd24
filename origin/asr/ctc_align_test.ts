import assert from "node:assert/strict";
import { alignCtc } from "./ctc_align.ts";
import { loadCtcRecognizer } from "./ctc_decoder.ts";
import { EspeakEngine } from "../tts/espeak_engine.ts";
import { int16ToFloat, resampleAll } from "../../lib/audio/resampler.ts";
import { isLowConfidence, MIN_CONFIDENCE_BY_ENGINE } from "./junk_filter.ts";

const VOCAB = ["<pad>", "|", "'", ..."abcdefghijklmnopqrstuvwxyz"];
const id = (c: string) => VOCAB.indexOf(c === " " ? "|" : c);

/** Log-prob frames where each frame puts `p` on one token (the rest spread evenly). */
function frames(tokens: string[], p = 0.9): Float32Array {
  const V = VOCAB.length;
  const out = new Float32Array(tokens.length * V);
  tokens.forEach((t, i) => {
    const k = t === "_" ? 0 : id(t);
    for (let v = 0; v < V; v++) out[i * V + v] = Math.log(v === k ? p : (1 - p) / (V - 1));
  });
  return out;
}

Deno.test("alignCtc: word spans and confidences from a known frame path, with and without a delimiter", () => {
  // "hi yo": h h _ i _ _ | _ y o o _   (frame 20 ms)
  const path = "hh_i__|_yoo_".split("");
  const a = alignCtc("hi yo", frames(path), path.length, VOCAB.length, VOCAB, 0, 1, 20);
  assert.deepEqual(a.words.map((w) => [w.text, w.start_ms, w.end_ms]), [["hi", 0, 80], ["yo", 160, 220]]);
  for (const w of a.words) assert.ok(Math.abs(w.confidence! - 0.9) < 1e-3);
  assert.ok(Math.abs(a.confidence! - 0.9) < 1e-3);
  // no delimiter frame between the words: the delimiter is optional
  const p2 = "hh_i___yoo_".split("");
  const b = alignCtc("hi yo", frames(p2), p2.length, VOCAB.length, VOCAB, 0, 1, 20);
  assert.deepEqual(b.words.map((w) => [w.text, w.start_ms, w.end_ms]), [["hi", 0, 80], ["yo", 140, 200]]);
  // repeated letters need a blank between them ("ll" in "all")
  const p3 = "_all_l_".split("");
  const c = alignCtc("all", frames(p3), p3.length, VOCAB.length, VOCAB, 0, 1, 10);
  assert.deepEqual(c.words.map((w) => [w.text, w.start_ms, w.end_ms]), [["all", 10, 60]]);
  // unsure frames give a low confidence
  const d = alignCtc("hi yo", frames(path, 0.2), path.length, VOCAB.length, VOCAB, 0, 1, 20);
  assert.ok(d.confidence! < 0.3);
  // more letters than frames: no alignment, no invented times
  assert.deepEqual(alignCtc("hello", frames(["h", "e"]), 2, VOCAB.length, VOCAB, 0, 1, 20), {
    words: [],
    confidence: null,
  });
  assert.deepEqual(alignCtc("", frames(path), path.length, VOCAB.length, VOCAB, 0, 1, 20).words, []);
});

Deno.test("isLowConfidence: all words below the threshold drops; one sure word keeps the result", () => {
  const w = (c: number | null) => ({ confidence: c });
  assert.equal(isLowConfidence({ confidence: 0.2, words: [w(0.2), w(0.3)] }, 0.5), true);
  assert.equal(isLowConfidence({ confidence: 0.3, words: [w(0.2), w(0.9)] }, 0.5), false);
  assert.equal(isLowConfidence({ confidence: 0.2 }, 0.5), true);
  assert.equal(isLowConfidence({ confidence: null }, 0.5), false);
  assert.equal(isLowConfidence({ confidence: 0.9, words: [w(null)] }, 0.5), false);
  // sphinx runs without the filter (its threshold is 0): even a zero posterior keeps the result.
  assert.equal(MIN_CONFIDENCE_BY_ENGINE.sphinx, 0);
  assert.equal(
    isLowConfidence({ confidence: 0, words: [w(0), w(0)] }, MIN_CONFIDENCE_BY_ENGINE.sphinx!),
    false,
  );
});

/** Sentences with espeak-ng's own word start times (shared with bench/word_timing.ts). */
export const TIMING_SENTENCES = [
  "please turn on the kitchen lights and open the window",
  "the quick brown fox jumps over the lazy dog",
  "we will meet at the station before the train leaves",
  "she bought three apples and a loaf of bread",
];

Deno.test({
  name: "ctc word timings: median |start error| against espeak-ng's word times is at most 60 ms",
  sanitizeResources: false,
  fn: async () => {
    const espeak = await EspeakEngine.load("en-us");
    const rec = await loadCtcRecognizer(new URL("../../models/parley-asr-en", import.meta.url).pathname);
    const errors: number[] = [];
    try {
      for (const text of TIMING_SENTENCES) {
        const syn = await espeak.synthesize(text);
        const pcm = resampleAll(int16ToFloat(syn.pcm as Int16Array), syn.sampleRate, 16000);
        const r = await rec.transcribe(pcm);
        const hyp = r.words;
        assert.equal(hyp.map((w) => w.text).join(" "), r.hypotheses[0].text);
        // words recognised correctly, matched in order
        let j = 0;
        for (const t of syn.words) {
          const ref = t.text.toLowerCase().replace(/[^a-z']/g, "");
          const k = hyp.findIndex((w, i) => i >= j && w.text === ref);
          if (k < 0) continue;
          errors.push(Math.abs(hyp[k].start_ms - t.start_ms));
          assert.ok(hyp[k].end_ms > hyp[k].start_ms);
          assert.ok(hyp[k].confidence! > 0 && hyp[k].confidence! <= 1);
          j = k + 1;
        }
      }
    } finally {
      await rec.dispose();
      await espeak.close();
    }
    errors.sort((a, b) => a - b);
    const median = errors[Math.floor(errors.length / 2)];
    console.log(
      `ctc: ${errors.length} words timed, median |start error| ${median} ms, p90 ${
        errors[Math.floor(errors.length * 0.9)]
      } ms`,
    );
    assert.ok(errors.length >= 30, `only ${errors.length} words recognised`);
    assert.ok(median <= 60, `median ${median} ms`);
  },
});
