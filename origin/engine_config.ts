/**
 * Engine configs built from the validated Config (lib/config.ts), the one source of engine settings and their
 * defaults. Settings that are not configuration (onnxruntime threads, pool tuning) are fixed here or in the
 * engine hub, never defaulted twice.
 */
import type { Config } from "../lib/config.ts";
import type { AsrConfig } from "./asr/engine.ts";
import type { TtsConfig } from "./tts/engine.ts";
import type { EngineHubConfig } from "./pipeline/engine_hub.ts";
import { defaultVoiceOf } from "../protocol/voices.ts";

type EngineSettings = Pick<
  Config,
  | "ASR_ENGINE"
  | "ASR_MODEL"
  | "MODELS_DIR"
  | "ALLOW_REMOTE_MODELS"
  | "TTS_ENGINE"
  | "TTS_VOICE"
  | "ASR_WORKERS"
>;

/** One onnxruntime intra-op thread per worker: several workers share few cores. */
const INTRA_OP_THREADS = 1;

export function asrConfig(config: EngineSettings): AsrConfig {
  return {
    engine: config.ASR_ENGINE,
    model: config.ASR_MODEL,
    modelsDir: config.MODELS_DIR,
    allowRemoteModels: config.ALLOW_REMOTE_MODELS,
    intraOpNumThreads: INTRA_OP_THREADS,
  };
}

export function ttsConfig(config: EngineSettings): TtsConfig {
  return {
    engine: config.TTS_ENGINE,
    voice: defaultVoiceOf(config.TTS_ENGINE, config.TTS_VOICE),
    modelsDir: config.MODELS_DIR,
    allowRemoteModels: config.ALLOW_REMOTE_MODELS,
    intraOpNumThreads: INTRA_OP_THREADS,
  };
}

/** The live-session engines: ASR and TTS in `ASR_WORKERS` speech workers (pool tuning: the hub's defaults). */
export function engineHubConfig(config: EngineSettings): Pick<EngineHubConfig, "asr" | "tts" | "workers"> {
  return { asr: asrConfig(config), tts: ttsConfig(config), workers: config.ASR_WORKERS };
}
