/**
 * CTC decoding for the bundled recognizer (models/parley-asr-en): greedy best path and a lexicon-constrained
 * prefix beam search with a word trigram (or bigram) LM (lm.json in the model folder, built from the training
 * text only by models/train/build_lm.py).
 *
 * Vocabulary (vocab.json): `<pad>` is the CTC blank, `|` the word delimiter, then `'` and a-z (and `<unk>`).
 *
 * Beam search: every beam is a character prefix. Letters must follow a path in the lexicon trie; a word
 * delimiter (or the end of the utterance) is only allowed where the trie marks a complete word, and then adds
 * `alpha * log P(word | two previous words) + beta`. While a word is incomplete, the beam carries
 * `alpha * max log P_unigram` over the words that can still complete it (LM look-ahead), so partial words
 * compete fairly with finished ones. Scores are natural-log.
 */
import { readFile } from "node:fs/promises";
import { splitModelFolder } from "../model_path.ts";
import { alignCtc, frameLogSumExp } from "./ctc_align.ts";
import type { AsrWord } from "./engine.ts";

export interface CtcHypothesis {
  text: string;
  /** log-prob-ish, higher is better: acoustic log P(prefix) + alpha * LM + beta * words. */
  score: number;
}

export interface CtcDecodeOptions {
  /** Beams kept per frame (default: decoder_config.json `beam_width`, else 16). */
  beamWidth?: number;
  /** Hypotheses returned (default 5). */
  nBest?: number;
  /** LM weight (default from the model folder's decoder config). */
  alpha?: number;
  /** Word insertion bonus (default from the model folder's decoder config). */
  beta?: number;
  /** Ignore tokens whose per-frame log-prob is below this (default -12). */
  tokenThreshold?: number;
  /** Extend each beam with at most this many of the frame's likeliest non-blank tokens (default 8). */
  maxCandidates?: number;
  /**
   * Score (natural log, added once per word) of a word spelled outside the lexicon; -Infinity forbids
   * out-of-lexicon words. Default from the model folder's decoder config.
   */
  unkScore?: number;
}

interface LmData {
  words: string[];
  unigram: number[];
  backoff: number[];
  bigram_ctx: number[];
  bigram_word: number[];
  bigram_logp: number[];
  /** Optional trigram part: stored triples (u, v, word) and the backoff weights of their (u, v) contexts. */
  trigram_u?: number[];
  trigram_v?: number[];
  trigram_word?: number[];
  trigram_logp?: number[];
  trigram_backoff_u?: number[];
  trigram_backoff_v?: number[];
  trigram_backoff?: number[];
}

/** Decoding defaults tuned on the dev split (held-out sentences + voices, not the eval set). */
export const DEFAULT_ALPHA = 0.6;
export const DEFAULT_BETA = 1.5;
export const DEFAULT_UNK_SCORE = -10;
/** Beams kept per frame for final results unless decoder_config.json says otherwise. */
export const DEFAULT_BEAM_WIDTH = 16;
const NEG_INF = -Infinity;

function logAddExp(a: number, b: number): number {
  if (a === NEG_INF) return b;
  if (b === NEG_INF) return a;
  return a > b ? a + Math.log1p(Math.exp(b - a)) : b + Math.log1p(Math.exp(a - b));
}

/** Word trigram (or bigram) LM over a lexicon trie. */
class LexiconLm {
  readonly nWords: number;
  readonly startCtx: number;
  private unigram: Float32Array;
  private backoff: Float32Array;
  private bigram = new Map<number, number>();
  private trigram = new Map<number, number>();
  private trigramBackoff = new Map<number, number>();
  /** trie: child index per (node, letter slot), -1 if none */
  children: Int32Array;
  /** word id ending at node, -1 if none */
  wordAt: Int32Array;
  /** max unigram log-prob of any word in the node's subtree */
  lookahead: Float32Array;
  /** vocab id -> trie letter slot (-1 for blank / delimiter / unknown) */
  slotOf: Int32Array;
  nSlots: number;

  constructor(lm: LmData, vocab: string[]) {
    this.nWords = lm.words.length;
    this.startCtx = this.nWords;
    this.unigram = Float32Array.from(lm.unigram);
    this.backoff = Float32Array.from(lm.backoff);
    const stride = this.nWords + 1;
    for (let i = 0; i < lm.bigram_ctx.length; i++) {
      this.bigram.set(lm.bigram_ctx[i] * stride + lm.bigram_word[i], lm.bigram_logp[i]);
    }
    // keys (u * stride + v) * stride + w stay below 2^53 for lexicons up to ~200k words
    const tu = lm.trigram_u ?? [],
      tv = lm.trigram_v ?? [],
      tw = lm.trigram_word ?? [],
      tl = lm.trigram_logp ?? [];
    for (let i = 0; i < tl.length; i++) this.trigram.set((tu[i] * stride + tv[i]) * stride + tw[i], tl[i]);
    const bu = lm.trigram_backoff_u ?? [], bv = lm.trigram_backoff_v ?? [], bw = lm.trigram_backoff ?? [];
    for (let i = 0; i < bw.length; i++) this.trigramBackoff.set(bu[i] * stride + bv[i], bw[i]);
    // letter slots: every single-character vocab entry except the delimiter
    this.slotOf = new Int32Array(vocab.length).fill(-1);
    const slotByChar = new Map<string, number>();
    vocab.forEach((t, id) => {
      if (t.length === 1 && t !== "|") {
        slotByChar.set(t, slotByChar.size);
        this.slotOf[id] = slotByChar.size - 1;
      }
    });
    this.nSlots = slotByChar.size;
    // build the trie
    let cap = 1 << 16;
    let children = new Int32Array(cap * this.nSlots).fill(-1);
    let wordAt = new Int32Array(cap).fill(-1);
    let nodes = 1;
    lm.words.forEach((w, id) => {
      let node = 0;
      for (const ch of w) {
        const s = slotByChar.get(ch);
        if (s === undefined) return; // word not spellable with this vocabulary
        const k = node * this.nSlots + s;
        let next = children[k];
        if (next < 0) {
          if (nodes === cap) {
            cap *= 2;
            const c2 = new Int32Array(cap * this.nSlots).fill(-1);
            c2.set(children);
            children = c2;
            const w2 = new Int32Array(cap).fill(-1);
            w2.set(wordAt);
            wordAt = w2;
          }
          next = nodes++;
          children[k] = next;
        }
        node = next;
      }
      if (wordAt[node] < 0) wordAt[node] = id;
    });
    this.children = children.slice(0, nodes * this.nSlots);
    this.wordAt = wordAt.slice(0, nodes);
    // look-ahead: children always have larger indices than parents, so one reverse pass suffices
    const la = new Float32Array(nodes).fill(NEG_INF);
    for (let n = nodes - 1; n >= 0; n--) {
      let best = this.wordAt[n] >= 0 ? this.unigram[this.wordAt[n]] : NEG_INF;
      const base = n * this.nSlots;
      for (let s = 0; s < this.nSlots; s++) {
        const c = this.children[base + s];
        if (c >= 0 && la[c] > best) best = la[c];
      }
      la[n] = best;
    }
    this.lookahead = la;
  }

  /**
   * log P(word | ctx2, ctx); ctx = previous word id or startCtx, ctx2 = the word before it (startCtx after the
   * first word, -1 when there is none).
   */
  logp(ctx2: number, ctx: number, word: number): number {
    const stride = this.nWords + 1;
    if (ctx2 >= 0 && this.trigram.size) {
      const t = this.trigram.get((ctx2 * stride + ctx) * stride + word);
      if (t !== undefined) return t;
      const bo = this.trigramBackoff.get(ctx2 * stride + ctx) ?? 0;
      return bo + this.logp2(ctx, word);
    }
    return this.logp2(ctx, word);
  }

  private logp2(ctx: number, word: number): number {
    const b = this.bigram.get(ctx * (this.nWords + 1) + word);
    if (b !== undefined) return b;
    return this.backoff[ctx] + this.unigram[word];
  }
}

interface Beam {
  text: string;
  last: number; // last emitted vocab id (-1: none)
  pb: number; // log P(prefix, ending in blank)
  pnb: number; // log P(prefix, ending in non-blank)
  node: number; // trie node of the current partial word (0 = between words, -1 = outside the lexicon)
  ctx: number; // previous complete word (LM context)
  ctx2: number; // the complete word before ctx (-1: none)
  lm: number; // alpha * LM + beta * words over complete words
  look: number; // alpha * look-ahead of the partial word
}

function total(b: Beam): number {
  return logAddExp(b.pb, b.pnb) + b.lm + b.look;
}

export class CtcDecoder {
  readonly blank: number;
  readonly delim: number;

  private constructor(
    readonly vocab: string[],
    private lm: LexiconLm | null,
    readonly alpha: number,
    readonly beta: number,
    readonly unkScore: number,
    readonly beamWidth: number,
  ) {
    this.blank = vocab.indexOf("<pad>");
    this.delim = vocab.indexOf("|");
    if (this.blank < 0 || this.delim < 0) throw new Error("vocab needs <pad> (blank) and | (word delimiter)");
  }

  /** Reads vocab.json and lm.json (optional: without it decode() is an unconstrained beam search). */
  static async load(modelDir: string): Promise<CtcDecoder> {
    const vocabMap = JSON.parse(await readFile(`${modelDir}/vocab.json`, "utf8")) as Record<string, number>;
    let lmData: LmData | null = null;
    try {
      lmData = JSON.parse(await readFile(`${modelDir}/lm.json`, "utf8")) as LmData;
    } catch (e) {
      if ((e as { code?: string }).code !== "ENOENT") throw e;
    }
    let alpha = DEFAULT_ALPHA,
      beta = DEFAULT_BETA,
      unkScore = DEFAULT_UNK_SCORE,
      beamWidth = DEFAULT_BEAM_WIDTH;
    try {
      const dc = JSON.parse(await readFile(`${modelDir}/decoder_config.json`, "utf8"));
      if (typeof dc.alpha === "number") alpha = dc.alpha;
      if (typeof dc.beta === "number") beta = dc.beta;
      if (typeof dc.unkScore === "number") unkScore = dc.unkScore;
      if (dc.unkScore === null) unkScore = -Infinity;
      if (typeof dc.beam_width === "number") beamWidth = dc.beam_width;
    } catch { /* defaults */ }
    return CtcDecoder.fromData(vocabMap, lmData, { alpha, beta, unkScore, beamWidth });
  }

  /** Builds a decoder from in-memory data (tests). */
  static fromData(
    vocabMap: Record<string, number>,
    lmData: LmData | null,
    opts: { alpha?: number; beta?: number; unkScore?: number; beamWidth?: number } = {},
  ): CtcDecoder {
    const vocab: string[] = [];
    for (const [t, id] of Object.entries(vocabMap)) vocab[id] = t;
    const lm = lmData ? new LexiconLm(lmData, vocab) : null;
    return new CtcDecoder(
      vocab,
      lm,
      opts.alpha ?? DEFAULT_ALPHA,
      opts.beta ?? DEFAULT_BETA,
      opts.unkScore ?? DEFAULT_UNK_SCORE,
      opts.beamWidth ?? DEFAULT_BEAM_WIDTH,
    );
  }

  private tokenText(id: number): string {
    return id === this.delim ? " " : this.vocab[id];
  }

  /** Best path: argmax per frame, merge repeats, drop blanks. Accepts raw logits or log-probs. */
  greedy(logits: Float32Array, frames: number, vocabSize: number): string {
    let out = "";
    let prev = -1;
    for (let t = 0; t < frames; t++) {
      const o = t * vocabSize;
      let best = 0;
      for (let v = 1; v < vocabSize; v++) if (logits[o + v] > logits[o + best]) best = v;
      if (best !== prev && best !== this.blank && this.vocab[best]?.length === 1) out += this.tokenText(best);
      prev = best;
    }
    return out.replace(/\s+/g, " ").trim();
  }

  /**
   * Prefix beam search. `logits`: row-major [frames, vocabSize], raw logits or log-probs (a log-softmax is applied
   * per frame, which leaves log-probs unchanged). Returns up to nBest hypotheses, best first.
   */
  decode(
    logits: Float32Array,
    frames: number,
    vocabSize: number,
    opts: CtcDecodeOptions = {},
  ): CtcHypothesis[] {
    const beamWidth = opts.beamWidth ?? this.beamWidth;
    const nBest = opts.nBest ?? 5;
    const alpha = opts.alpha ?? this.alpha;
    const beta = opts.beta ?? this.beta;
    const thr = opts.tokenThreshold ?? -12;
    const unk = opts.unkScore ?? this.unkScore;
    const maxCand = opts.maxCandidates ?? 8;
    const lm = this.lm;
    const blank = this.blank, delim = this.delim;
    const lp = new Float32Array(vocabSize);

    let beams: Beam[] = [{
      text: "",
      last: -1,
      pb: 0,
      pnb: NEG_INF,
      node: 0,
      ctx: lm ? lm.startCtx : 0,
      ctx2: -1,
      lm: 0,
      look: 0,
    }];

    for (let t = 0; t < frames; t++) {
      // log-softmax of this frame
      const o = t * vocabSize;
      const lse = frameLogSumExp(logits, o, vocabSize);
      let cand: number[] = [];
      for (let v = 0; v < vocabSize; v++) {
        lp[v] = logits[o + v] - lse;
        if (v !== blank && lp[v] > thr && this.vocab[v]?.length === 1) cand.push(v);
      }
      if (cand.length > maxCand) cand = cand.sort((x, y) => lp[y] - lp[x]).slice(0, maxCand);

      const next = new Map<string, Beam>();
      const get = (text: string, mk: () => Beam): Beam => {
        let nb = next.get(text);
        if (!nb) {
          nb = mk();
          next.set(text, nb);
        }
        return nb;
      };
      for (const b of beams) {
        const pAll = logAddExp(b.pb, b.pnb);
        // stay: blank, or repeat of the last token (collapsed)
        const same = get(b.text, () => ({ ...b, pb: NEG_INF, pnb: NEG_INF }));
        same.pb = logAddExp(same.pb, pAll + lp[blank]);
        if (b.last >= 0) same.pnb = logAddExp(same.pnb, b.pnb + lp[b.last]);

        for (const c of cand) {
          // a repeated token only extends the prefix after a blank
          const p = (c === b.last ? b.pb : pAll) + lp[c];
          if (p === NEG_INF) continue;
          if (c === delim) {
            if (b.node === 0) {
              // delimiter between words / at the start: no new word; keep it as the same prefix
              if (b.text === "" || b.text.endsWith(" ")) {
                // a leading delimiter acts like a blank; a repeated one collapses into the previous
                if (b.text === "") same.pb = logAddExp(same.pb, p);
                else same.pnb = logAddExp(same.pnb, p);
                continue;
              }
            }
            let lmAdd = 0, ctx = b.ctx, ctx2 = b.ctx2;
            if (lm && b.node < 0) {
              lmAdd = unk + beta; // out-of-lexicon word (its penalty is already in `look`)
              ctx = lm.startCtx;
              ctx2 = -1;
            } else if (lm) {
              const w = lm.wordAt[b.node];
              if (w < 0) continue; // not a complete word
              lmAdd = alpha * lm.logp(b.ctx2, b.ctx, w) + beta;
              ctx2 = b.ctx;
              ctx = w;
            } else {
              lmAdd = beta;
            }
            const text = b.text + " ";
            const nb = get(text, () => ({
              text,
              last: c,
              pb: NEG_INF,
              pnb: NEG_INF,
              node: 0,
              ctx,
              ctx2,
              lm: b.lm + lmAdd,
              look: 0,
            }));
            nb.pnb = logAddExp(nb.pnb, p);
          } else {
            let node = 0, look = 0;
            if (lm) {
              const s = lm.slotOf[c];
              if (s < 0) continue;
              node = b.node < 0 ? -1 : lm.children[b.node * lm.nSlots + s];
              if (node < 0) {
                if (unk === NEG_INF) continue; // not in the lexicon
                look = unk;
              } else {
                look = alpha * lm.lookahead[node];
              }
            }
            const text = b.text + this.vocab[c];
            const nb = get(text, () => ({
              text,
              last: c,
              pb: NEG_INF,
              pnb: NEG_INF,
              node,
              ctx: b.ctx,
              ctx2: b.ctx2,
              lm: b.lm,
              look,
            }));
            nb.pnb = logAddExp(nb.pnb, p);
          }
        }
      }
      const all = [...next.values()];
      if (all.length > beamWidth) {
        all.sort((x, y) => total(y) - total(x));
        all.length = beamWidth;
      }
      beams = all;
    }

    // finish: complete the last word
    const done: CtcHypothesis[] = [];
    for (const b of beams) {
      let score = logAddExp(b.pb, b.pnb) + b.lm;
      if (lm && b.node < 0) {
        score += unk + beta;
      } else if (lm && b.node !== 0) {
        const w = lm.wordAt[b.node];
        if (w < 0) continue;
        score += alpha * lm.logp(b.ctx2, b.ctx, w) + beta;
      } else if (!lm && b.text !== "" && !b.text.endsWith(" ")) {
        score += beta;
      }
      done.push({ text: b.text.trim(), score });
    }
    done.sort((x, y) => y.score - x.score);
    const seen = new Set<string>();
    const out: CtcHypothesis[] = [];
    for (const h of done) {
      if (seen.has(h.text)) continue;
      seen.add(h.text);
      out.push(h);
      if (out.length >= nBest) break;
    }
    if (out.length === 0 || out[0].text === "") {
      // nothing (or only silence) fits the lexicon while the best path has letters: fall back to the best path
      const g = this.greedy(logits, frames, vocabSize);
      if (out.length === 0 || g !== "") out.unshift({ text: g, score: NEG_INF });
      if (out.length > nBest) out.length = nBest;
    }
    return out;
  }
}

export interface CtcRecognizerOptions {
  /** onnxruntime intra-op threads (default 1). */
  intraOpNumThreads?: number;
  /**
   * Silence (ms) appended before the model runs (default DEFAULT_TAIL_PAD_MS). The model needs a little right
   * context after the last phoneme; audio that stops right at the end of a word loses that word otherwise.
   */
  tailPadMs?: number;
}

/** See CtcRecognizerOptions.tailPadMs (measured on the dev split and on Parley's own espeak voice). */
export const DEFAULT_TAIL_PAD_MS = 300;

export interface CtcTranscribeOptions extends CtcDecodeOptions {}

export interface CtcRecognizer {
  transcribe(
    pcm16k: Float32Array,
    opts?: CtcTranscribeOptions,
  ): Promise<{
    hypotheses: CtcHypothesis[];
    greedy: string;
    frames: number;
    /** Words of hypotheses[0] with times (ms from the first input sample) and confidences (./ctc_align.ts). */
    words: AsrWord[];
    /** Mean best-path letter posterior of hypotheses[0] (./ctc_align.ts); null without letters. */
    confidence: number | null;
    /** wall time of the model (feature extraction + ONNX) and of the decoders, ms */
    timing: { modelMs: number; decodeMs: number };
  }>;
  dispose(): Promise<void>;
}

// deno-lint-ignore no-explicit-any
let transformers: Promise<any> | null = null;
function importTransformers() {
  if (!transformers) {
    transformers = (async () => {
      // In a Deno Web Worker `location.origin` is "null", which breaks Transformers.js URL handling.
      if (
        "location" in globalThis &&
        (globalThis as { location?: { origin?: string } }).location?.origin === "null"
      ) {
        Object.defineProperty(globalThis, "location", {
          value: undefined,
          configurable: true,
          writable: true,
        });
      }
      return await import("@huggingface/transformers");
    })();
  }
  return transformers;
}

/**
 * Loads the model folder (Transformers.js Wav2Vec2ForCTC layout, local files only) and its decoder.
 * `modelDir` is the model folder itself, e.g. `<repo>/models/parley-asr-en`.
 */
export async function loadCtcRecognizer(
  modelDir: string,
  opts: CtcRecognizerOptions = {},
): Promise<CtcRecognizer> {
  const dir = modelDir.replace(/\/+$/, "");
  const t = await importTransformers();
  const { env, AutoProcessor, AutoModelForCTC } = t;
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  // Transformers.js resolves local models as <localModelPath>/<id>; restore the previous root afterwards.
  const prevRoot = env.localModelPath;
  const { root, id } = splitModelFolder(dir);
  env.localModelPath = root;
  let processor, model;
  try {
    processor = await AutoProcessor.from_pretrained(id, { local_files_only: true });
    model = await AutoModelForCTC.from_pretrained(id, {
      local_files_only: true,
      session_options: { intraOpNumThreads: opts.intraOpNumThreads ?? 1 },
    });
  } finally {
    env.localModelPath = prevRoot;
  }
  const decoder = await CtcDecoder.load(dir);
  const tailPad = Math.round(16 * (opts.tailPadMs ?? DEFAULT_TAIL_PAD_MS));
  return {
    async transcribe(pcm16k: Float32Array, o: CtcTranscribeOptions = {}) {
      // trailing silence, and very short inputs padded to 0.1 s (the model needs at least a few frames)
      const n = Math.max(1600, pcm16k.length + tailPad);
      const audio = n === pcm16k.length ? pcm16k : (() => {
        const a = new Float32Array(n);
        a.set(pcm16k);
        return a;
      })();
      const t0 = performance.now();
      const inputs = await processor(audio);
      const out = await model({ input_values: inputs.input_values });
      const logits = out.logits;
      const [, frames, vocabSize] = logits.dims as number[];
      const data = logits.data as Float32Array;
      const t1 = performance.now();
      const hypotheses = decoder.decode(data, frames, vocabSize, o);
      const greedy = decoder.greedy(data, frames, vocabSize);
      const frameMs = (audio.length / 16) / frames;
      const al = alignCtc(
        hypotheses[0]?.text ?? "",
        data,
        frames,
        vocabSize,
        decoder.vocab,
        decoder.blank,
        decoder.delim,
        frameMs,
      );
      // words in the padding (tail silence) cannot start after the real audio
      const endMs = pcm16k.length / 16;
      const words = al.words.map((w) => ({
        ...w,
        start_ms: Math.min(w.start_ms, endMs),
        end_ms: Math.min(w.end_ms, endMs),
      }));
      return {
        hypotheses,
        greedy,
        frames,
        words,
        confidence: al.confidence,
        timing: { modelMs: t1 - t0, decodeMs: performance.now() - t1 },
      };
    },
    async dispose() {
      await model.dispose();
    },
  };
}
