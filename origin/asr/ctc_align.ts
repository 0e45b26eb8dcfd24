/**
 * Word timings and confidences for a CTC transcript: the most likely frame path (Viterbi) that spells exactly
 * the chosen hypothesis, read off per word.
 *
 * The beam search (./ctc_decoder.ts) picks the text; this module finds where that text is in the posteriors.
 * States are CTC's usual "blank, c1, blank, c2, …, blank" with the word delimiter `|` between words made
 * optional (the model may separate words by blanks alone). A word's frames are the frames whose path state is
 * one of its letters; its time span is [first letter frame, last letter frame + 1) × the frame duration.
 *
 * Confidence of a word: the mean posterior, over the word's letter frames, of the letter the path emits there
 * (CTC posteriors are spiky: a clearly heard letter sits near 1 on its frames, an invented one well below).
 * The segment confidence is the same mean over all letter frames of the segment. Both are in [0, 1].
 */
import type { AsrWord } from "./engine.ts";

export interface CtcAlignment {
  words: AsrWord[];
  /** Mean posterior over all letter frames of the text; null when the text has no letters. */
  confidence: number | null;
}

const NEG_INF = -Infinity;

/** log-sum-exp of one frame's row `logits[o .. o + n)`: subtract it to get log-probs. */
export function frameLogSumExp(logits: Float32Array, o: number, n: number): number {
  let mx = NEG_INF;
  for (let v = 0; v < n; v++) if (logits[o + v] > mx) mx = logits[o + v];
  let se = 0;
  for (let v = 0; v < n; v++) se += Math.exp(logits[o + v] - mx);
  return mx + Math.log(se);
}

/**
 * `logits`: row-major [frames, vocabSize] raw logits or log-probs (a log-softmax is applied per frame).
 * `vocab`: token per id; `blank` / `delim` their ids. `frameMs`: duration of one frame. Letters of `text` not in
 * the vocabulary are left out of the alignment (the word keeps its text).
 */
export function alignCtc(
  text: string,
  logits: Float32Array,
  frames: number,
  vocabSize: number,
  vocab: readonly string[],
  blank: number,
  delim: number,
  frameMs: number,
): CtcAlignment {
  const words = text.split(/\s+/).filter(Boolean);
  if (words.length === 0 || frames === 0) return { words: [], confidence: null };
  const idOf = new Map<string, number>();
  vocab.forEach((t, id) => {
    if (t && t.length === 1 && id !== blank && id !== delim) idOf.set(t, id);
  });
  // label sequence: letters of each word, a delimiter between words; word index per label (-1: delimiter)
  const labels: number[] = [];
  const wordOf: number[] = [];
  const firstOfWord: boolean[] = [];
  words.forEach((w, wi) => {
    if (wi > 0) {
      labels.push(delim);
      wordOf.push(-1);
      firstOfWord.push(false);
    }
    let first = true;
    for (const ch of w.toLowerCase()) {
      const id = idOf.get(ch);
      if (id === undefined) continue;
      labels.push(id);
      wordOf.push(wi);
      firstOfWord.push(first);
      first = false;
    }
  });
  // extended states: blank, l0, blank, l1, …, blank
  const S = 2 * labels.length + 1;
  const lab = (s: number) => (s % 2 === 0 ? blank : labels[(s - 1) >> 1]);
  // log-softmax per frame
  const lp = new Float32Array(frames * vocabSize);
  for (let t = 0; t < frames; t++) {
    const o = t * vocabSize;
    const lse = frameLogSumExp(logits, o, vocabSize);
    for (let v = 0; v < vocabSize; v++) lp[o + v] = logits[o + v] - lse;
  }
  // Viterbi with back-pointers (Int32: frames × states)
  let prev = new Float64Array(S).fill(NEG_INF);
  let cur = new Float64Array(S);
  const back = new Int32Array(frames * S);
  prev[0] = lp[blank];
  if (S > 1) prev[1] = lp[lab(1)];
  // a delimiter state (odd s whose label is delim) may be skipped: its next letter can follow the previous
  // word's last letter (s - 2 of the delimiter) or the blank after it (s - 1 of the delimiter)
  for (let t = 1; t < frames; t++) {
    const o = t * vocabSize;
    for (let s = 0; s < S; s++) {
      let best = prev[s], from = s;
      if (s >= 1 && prev[s - 1] > best) (best = prev[s - 1]), (from = s - 1);
      if (s >= 2 && s % 2 === 1 && lab(s) !== lab(s - 2) && prev[s - 2] > best) {
        (best = prev[s - 2]), (from = s - 2);
      }
      if (s % 2 === 1 && firstOfWord[(s - 1) >> 1] && s >= 4 && lab(s - 2) === delim) {
        // skip the delimiter: from the previous word's last letter (s - 4) or the blank after it (s - 3)
        if (prev[s - 4] > best) (best = prev[s - 4]), (from = s - 4);
        if (prev[s - 3] > best) (best = prev[s - 3]), (from = s - 3);
      }
      cur[s] = best === NEG_INF ? NEG_INF : best + lp[o + lab(s)];
      back[t * S + s] = from;
    }
    [prev, cur] = [cur, prev];
  }
  let s = S > 1 && prev[S - 2] > prev[S - 1] ? S - 2 : S - 1;
  if (prev[s] === NEG_INF) return { words: [], confidence: null }; // more letters than frames
  const path = new Int32Array(frames);
  for (let t = frames - 1; t >= 0; t--) {
    path[t] = s;
    if (t > 0) s = back[t * S + s];
  }
  const first = new Array<number>(words.length).fill(-1);
  const last = new Array<number>(words.length).fill(-1);
  const sum = new Array<number>(words.length).fill(0);
  const count = new Array<number>(words.length).fill(0);
  for (let t = 0; t < frames; t++) {
    const st = path[t];
    if (st % 2 === 0) continue;
    const wi = wordOf[(st - 1) >> 1];
    if (wi < 0) continue;
    if (first[wi] < 0) first[wi] = t;
    last[wi] = t;
    sum[wi] += Math.exp(lp[t * vocabSize + lab(st)]);
    count[wi]++;
  }
  let total = 0, n = 0;
  const out: AsrWord[] = [];
  words.forEach((w, wi) => {
    if (first[wi] < 0) return; // no letter of this word is in the vocabulary
    total += sum[wi];
    n += count[wi];
    out.push({
      text: w,
      start_ms: Math.round(first[wi] * frameMs),
      end_ms: Math.round((last[wi] + 1) * frameMs),
      confidence: round3(sum[wi] / count[wi]),
    });
  });
  return { words: out, confidence: n ? round3(total / n) : null };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
