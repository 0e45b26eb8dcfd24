/**
 * Builds the configured ASR engine. Each engine's module is imported only when it is the one configured (the
 * whisper engine pulls in Transformers.js). A new engine needs its name in protocol/engines.ts and a loader
 * here: the table is keyed by that list, so a name without a loader does not type-check.
 */
import type { AsrEngineName } from "../../protocol/engines.ts";
import type { AsrConfig, AsrEngine } from "./engine.ts";

/**
 * Sphinx decoders one worker may hold (one per live session's stream; each holds its own model copy, ~100 MB).
 * A stream that finds none gets OverloadedError and its session an `error` event.
 */
export const SPHINX_DECODERS_PER_WORKER = 32;

const LOADERS: Record<AsrEngineName, (config: AsrConfig) => Promise<AsrEngine>> = {
  ctc: async (config) => (await import("./ctc_engine.ts")).CtcEngine.load(config),
  whisper: async (config) => (await import("./whisper_engine.ts")).WhisperEngine.load(config),
  sphinx: async (config) => {
    const { SphinxEngine } = await import("./sphinx/sphinx_engine.ts");
    return SphinxEngine.load({ config: config.sphinx, maxDecoders: SPHINX_DECODERS_PER_WORKER, prewarm: 1 });
  },
};

export function loadAsrEngine(config: AsrConfig): Promise<AsrEngine> {
  return LOADERS[config.engine](config);
}
