/**
 * The bundled CTC recognizer (models/parley-asr-en) behind the AsrEngine interface. Decoding (beam search,
 * alternatives) lives in ./ctc_decoder.ts (`loadCtcRecognizer`); this adapter only normalises the result.
 */
import type { AsrConfig, AsrEngine, AsrResult, AsrTranscribeOptions, AsrWord } from "./engine.ts";
import { modelFolder } from "../model_path.ts";
import { ClosedError } from "../../lib/closed_error.ts";

/** The shape of `loadCtcRecognizer(modelDir)` from ./ctc_decoder.ts. */
export interface CtcRecognizer {
  transcribe(pcm16k: Float32Array, opts?: { beamWidth?: number; nBest?: number }):
    | Promise<CtcTranscription>
    | CtcTranscription;
  dispose(): void | Promise<void>;
}
export interface CtcTranscription {
  hypotheses: Array<{ text: string; score: number }>;
  greedy?: string | { text: string };
  frames?: number;
  confidence?: number | null;
  /** Words of hypotheses[0] with times from the first input sample (./ctc_align.ts). */
  words?: AsrWord[];
}

/**
 * Confidence of the best hypothesis when the decoder reports one: the mean posterior of its letters on the best
 * frame path (./ctc_align.ts). The beam scores mix acoustic log-probability with LM weight and word bonus, so
 * they are not turned into a probability; without a decoder-provided confidence the result is `null`.
 */
export function ctcConfidence(r: CtcTranscription): number | null {
  return typeof r.confidence === "number" ? r.confidence : null;
}

/** Beam search settings for partial (interim) decodes. */
export const PARTIAL_SEARCH = { beamWidth: 4, nBest: 1 };

export class CtcEngine implements AsrEngine {
  readonly name = "ctc" as const;
  private constructor(readonly model: string, private rec: CtcRecognizer | null) {}

  static async load(config: AsrConfig): Promise<CtcEngine> {
    // Specifier built at run time: the decoder is another module's file and may land after this one.
    const spec = new URL("./ctc_decoder.ts", import.meta.url).href;
    const mod = await import(spec) as {
      loadCtcRecognizer(dir: string, opts?: unknown): Promise<CtcRecognizer>;
    };
    const rec = await mod.loadCtcRecognizer(modelFolder(config.model, config.modelsDir), {
      intraOpNumThreads: config.intraOpNumThreads,
    });
    return new CtcEngine(config.model, rec);
  }

  async transcribe(pcm16k: Float32Array, opts: AsrTranscribeOptions = {}): Promise<AsrResult> {
    if (!this.rec) throw new ClosedError("ctc engine", "disposed");
    const t0 = performance.now();
    // partials: narrow beam, 1-best (the LM still applies); confirmed: the decoder's defaults
    const r = await this.rec.transcribe(pcm16k, opts.final === false ? PARTIAL_SEARCH : undefined);
    // scores must stay JSON numbers (a -Infinity would be sent as null)
    const alternatives = r.hypotheses.map((h) => ({
      text: h.text.trim(),
      score: Number.isFinite(h.score) ? h.score : -1e9,
    }));
    if (alternatives.length === 0) {
      const g = typeof r.greedy === "string" ? r.greedy : r.greedy?.text ?? "";
      alternatives.push({ text: g.trim(), score: 0 });
    }
    const result: AsrResult = {
      alternatives,
      confidence: ctcConfidence(r),
      inferenceMs: performance.now() - t0,
    };
    // timings belong to hypotheses[0]; when the greedy fallback stood in for it they would not match
    if (r.words && r.hypotheses.length > 0) result.words = r.words;
    return result;
  }

  async dispose(): Promise<void> {
    const r = this.rec;
    this.rec = null;
    if (r) await r.dispose();
  }
}
