/** VITS / MMS-TTS through Transformers.js `text-to-audio`. No timing output: timings are estimated. */
import { loadTransformers } from "../asr/transformers_env.ts";
import { locateModel } from "../model_path.ts";
import { ClosedError } from "../../lib/closed_error.ts";
import type { SynthesisEngine, SynthesisResult, TtsConfig, Voice } from "./engine.ts";
import { estimateTimings } from "./estimated_timings.ts";
import { visemeOfLetter } from "./visemes.ts";

export class VitsEngine implements SynthesisEngine {
  readonly name = "vits" as const;
  // deno-lint-ignore no-explicit-any
  private constructor(private pipe: any, private readonly model: string) {}

  static async load(config: TtsConfig): Promise<VitsEngine> {
    const model = config.vitsModel ?? "tiny-vits";
    const { root, id } = locateModel(model, config.modelsDir);
    const t = await loadTransformers({ modelsDir: root, allowRemoteModels: config.allowRemoteModels });
    const pipe = await t.pipeline("text-to-audio", id, {
      dtype: "fp32",
      session_options: { intraOpNumThreads: config.intraOpNumThreads, interOpNumThreads: 1 },
    });
    return new VitsEngine(pipe, model);
  }

  async synthesize(text: string, _voice?: string): Promise<SynthesisResult> {
    if (!this.pipe) throw new ClosedError("vits engine");
    const out = await this.pipe(text);
    const pcm = out.audio instanceof Float32Array ? out.audio : Float32Array.from(out.audio);
    const sampleRate = out.sampling_rate as number;
    const durationMs = (pcm.length * 1000) / sampleRate;
    return {
      pcm,
      sampleRate,
      durationMs,
      ...estimateTimings(text, durationMs, visemeOfLetter),
      estimated: true,
    };
  }

  listVoices(): Promise<Voice[]> {
    return Promise.resolve([{ id: this.model, name: this.model, languages: [], engine: "vits" }]);
  }

  async close(): Promise<void> {
    const p = this.pipe;
    this.pipe = null;
    if (p?.dispose) await p.dispose();
  }
}
