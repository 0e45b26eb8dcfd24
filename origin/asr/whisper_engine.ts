/** Whisper through Transformers.js `automatic-speech-recognition` (local folder or Hub id). */
import type { AsrConfig, AsrEngine, AsrResult, AsrTranscribeOptions } from "./engine.ts";
import { loadTransformers } from "./transformers_env.ts";
import { locateModel } from "../model_path.ts";
import { ClosedError } from "../../lib/closed_error.ts";

export class WhisperEngine implements AsrEngine {
  readonly name = "whisper" as const;
  // deno-lint-ignore no-explicit-any
  private constructor(readonly model: string, private pipe: any, private readonly config: AsrConfig) {}

  static async load(config: AsrConfig): Promise<WhisperEngine> {
    const { root, id } = locateModel(config.model, config.modelsDir);
    const t = await loadTransformers({ modelsDir: root, allowRemoteModels: config.allowRemoteModels });
    const pipe = await t.pipeline("automatic-speech-recognition", id, {
      dtype: "fp32",
      session_options: { intraOpNumThreads: config.intraOpNumThreads, interOpNumThreads: 1 },
    });
    patchWhisperFeatures(pipe.processor?.feature_extractor, t.Tensor);
    return new WhisperEngine(config.model, pipe, config);
  }

  async transcribe(pcm16k: Float32Array, opts: AsrTranscribeOptions = {}): Promise<AsrResult> {
    if (!this.pipe) throw new ClosedError("whisper engine", "disposed");
    const t0 = performance.now();
    // deno-lint-ignore no-explicit-any
    const genOpts: Record<string, any> = { max_new_tokens: this.config.maxNewTokens ?? 96 };
    const multilingual = !/\.en$/.test(this.model) && this.pipe.model?.generation_config?.lang_to_id;
    if (multilingual) {
      genOpts.language = opts.language ?? this.config.language ?? "en";
      genOpts.task = "transcribe";
    }
    const out = await this.pipe(pcm16k, genOpts);
    const text = String((Array.isArray(out) ? out[0]?.text : out?.text) ?? "").trim();
    return { alternatives: [{ text, score: 0 }], confidence: null, inferenceMs: performance.now() - t0 };
  }

  async dispose(): Promise<void> {
    const p = this.pipe;
    this.pipe = null;
    if (p?.dispose) await p.dispose();
  }
}

/**
 * Whisper pads every input to 30 s and Transformers.js computes the log-mel of all 3000 frames in JS (~75 ms
 * idle, 350+ ms on a loaded 2-core box) even for a 1 s partial. Frames that only see the zero padding all have the
 * same value, so we compute the spectrogram of the audio plus a little padding and fill the remaining frames with
 * the value of a padding frame. The max-normalisation is unaffected: padding frames never hold the maximum.
 * Result is identical to the reference extractor (tested in whisper_engine_test.ts).
 */
// deno-lint-ignore no-explicit-any
export function patchWhisperFeatures(fe: any, Tensor: any): void {
  if (!fe || fe.__parleyFast || typeof fe._extract_fbank_features !== "function") return;
  const original = fe._call.bind(fe);
  const cfg = fe.config as {
    n_samples: number;
    hop_length: number;
    n_fft: number;
    nb_max_frames: number;
    feature_size: number;
  };
  fe._call = async (audio: Float32Array, opts?: { max_length?: number }) => {
    const total = cfg.nb_max_frames;
    const hop = cfg.hop_length;
    if (opts?.max_length || audio.length + 4 * cfg.n_fft >= cfg.n_samples) return original(audio, opts);
    const len = Math.ceil((audio.length + 2 * cfg.n_fft) / hop) * hop;
    const w = new Float32Array(len);
    w.set(audio);
    const part = await fe._extract_fbank_features(w); // [n_mels, F]
    const [nMels, F] = part.dims as [number, number];
    const src = part.data as Float32Array;
    const keep = F - 2; // frames whose window lies inside w: identical to the full computation
    const out = new Float32Array(nMels * total);
    for (let m = 0; m < nMels; m++) {
      const row = m * total;
      out.set(src.subarray(m * F, m * F + keep), row);
      out.fill(src[m * F + F - 1], row + keep, row + total);
    }
    return { input_features: new Tensor("float32", out, [1, nMels, total]) };
  };
  fe.__parleyFast = true;
  fe.__reference = original;
}
