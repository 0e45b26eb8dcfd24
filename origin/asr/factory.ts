/**
 * Builds the configured ASR engine. Each engine's module is imported only when it is the one configured (the
 * whisper engine pulls in Transformers.js). A new engine needs its name in protocol/engines.ts and a loader
 * here: the table is keyed by that list, so a name without a loader does not type-check.
 */
import type { AsrEngineName } from "../../protocol/engines.ts";
import type { AsrConfig, AsrEngine } from "./engine.ts";

const LOADERS: Record<AsrEngineName, (config: AsrConfig) => Promise<AsrEngine>> = {
  ctc: async (config) => (await import("./ctc_engine.ts")).CtcEngine.load(config),
  whisper: async (config) => (await import("./whisper_engine.ts")).WhisperEngine.load(config),
};

export function loadAsrEngine(config: AsrConfig): Promise<AsrEngine> {
  return LOADERS[config.engine](config);
}
