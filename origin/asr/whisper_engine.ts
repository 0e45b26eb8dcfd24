/** Whisper through Transformers.js `automatic-speech-recognition` (local folder or Hub id). */
import type { AsrConfig, AsrEngine, AsrResult } from "./engine.ts";
import { loadTransformers } from "./transformers_env.ts";

export class WhisperEngine implements AsrEngine {
  readonly name = "whisper" as const;
  // deno-lint-ignore no-explicit-any
  private constructor(readonly model: string, private pipe: any, private readonly config: AsrConfig) {}

  static async load(config: AsrConfig): Promise<WhisperEngine> {
    let modelsDir = config.modelsDir;
    let model = config.model;
    if (model.startsWith("/")) {
      const i = model.replace(/\/$/, "").lastIndexOf("/");
      modelsDir = model.slice(0, i + 1);
      model = model.slice(i + 1).replace(/\/$/, "");
    }
    const t = await loadTransformers({ modelsDir, allowRemoteModels: config.allowRemoteModels });
    const pipe = await t.pipeline("automatic-speech-recognition", model, {
      dtype: "fp32",
      session_options: { intraOpNumThreads: config.intraOpNumThreads, interOpNumThreads: 1 },
    });
    return new WhisperEngine(config.model, pipe, config);
  }

  async transcribe(pcm16k: Float32Array): Promise<AsrResult> {
    if (!this.pipe) throw new Error("whisper engine disposed");
    const t0 = performance.now();
    // deno-lint-ignore no-explicit-any
    const opts: Record<string, any> = { max_new_tokens: this.config.maxNewTokens ?? 96 };
    const multilingual = !/\.en$/.test(this.model) && this.pipe.model?.generation_config?.lang_to_id;
    if (multilingual) {
      opts.language = this.config.language ?? "en";
      opts.task = "transcribe";
    }
    const out = await this.pipe(pcm16k, opts);
    const text = String((Array.isArray(out) ? out[0]?.text : out?.text) ?? "").trim();
    return { alternatives: [{ text, score: 0 }], confidence: null, inferenceMs: performance.now() - t0 };
  }

  async dispose(): Promise<void> {
    const p = this.pipe;
    this.pipe = null;
    if (p?.dispose) await p.dispose();
  }
}
