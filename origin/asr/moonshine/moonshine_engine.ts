/**
 * Moonshine (`ASR_ENGINE=moonshine`): a small encoder-decoder recognizer trained on human English speech, bundled
 * as models/moonshine-tiny-en (from the npm package @moonshine-ai/moonshine-js, MIT). It decodes whole segments,
 * so partials come from the pipeline re-decoding the growing segment, as with ctc and whisper.
 *
 * Confidence: the geometric mean of the probabilities of the tokens greedy decoding chose, the end token included
 * (a decode stopped by the token bound, i.e. repeating itself, counts as 0). Moonshine gives no timestamps, so
 * its results carry no word timings.
 */
import llamaTokenizer from "llama-tokenizer-js";
import type { AsrConfig, AsrEngine, AsrResult, AsrTranscribeOptions } from "../engine.ts";
import { modelFolder } from "../../model_path.ts";
import { ClosedError } from "../../../lib/closed_error.ts";
import { type MoonshineDecode, MoonshineModel } from "./moonshine_model.ts";

/** The bundled model folder under MODELS_DIR. */
export const MOONSHINE_DEFAULT_MODEL = "moonshine-tiny-en";

/** Ids the Llama tokenizer can print: above BOS/EOS/UNK and inside its 32,000-entry vocabulary. */
function printable(id: number): boolean {
  return id > 2 && id < llamaTokenizer.vocabById.length;
}

/** The repo's bundled model on one onnxruntime thread, as a speech worker runs it (benchmarks, tests). */
export function loadBundledMoonshine(): Promise<MoonshineEngine> {
  return MoonshineEngine.load({
    model: MOONSHINE_DEFAULT_MODEL,
    modelsDir: new URL("../../../models", import.meta.url).pathname,
    intraOpNumThreads: 1,
  });
}

export function moonshineText(tokens: readonly number[]): string {
  return llamaTokenizer.decode(tokens.filter(printable), false, true).trim();
}

export function moonshineConfidence(d: MoonshineDecode): number {
  if (!d.ended || d.logProbs.length === 0) return 0;
  const mean = d.logProbs.reduce((a, b) => a + b, 0) / d.logProbs.length;
  return Math.exp(mean);
}

export class MoonshineEngine implements AsrEngine {
  readonly name = "moonshine" as const;
  private constructor(readonly model: string, private m: MoonshineModel | null) {}

  static async load(
    config: Pick<AsrConfig, "model" | "modelsDir" | "intraOpNumThreads">,
  ): Promise<MoonshineEngine> {
    const dir = modelFolder(config.model, config.modelsDir);
    return new MoonshineEngine(
      config.model,
      await MoonshineModel.load(dir, { intraOpNumThreads: config.intraOpNumThreads }),
    );
  }

  async transcribe(pcm16k: Float32Array, _opts: AsrTranscribeOptions = {}): Promise<AsrResult> {
    if (!this.m) throw new ClosedError("moonshine engine", "disposed");
    const t0 = performance.now();
    const d = await this.m.decode(pcm16k);
    return {
      alternatives: [{ text: moonshineText(d.tokens), score: d.logProbs.reduce((a, b) => a + b, 0) }],
      confidence: moonshineConfidence(d),
      inferenceMs: performance.now() - t0,
    };
  }

  async dispose(): Promise<void> {
    const m = this.m;
    this.m = null;
    await m?.dispose();
  }
}
