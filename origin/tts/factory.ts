/**
 * Builds a synthesis engine by name. Each engine's module is imported only when used (vits pulls in
 * Transformers.js). A new engine needs its name in protocol/engines.ts and a loader here: the table is keyed
 * by that list, so a name without a loader does not type-check. Workers load engines other than the configured
 * one on demand, so each loader takes its own default voice when the configured one belongs to another engine.
 */
import type { TtsEngineName } from "../../protocol/engines.ts";
import type { SynthesisEngine, TtsConfig } from "./engine.ts";
import { defaultVoiceOf } from "../../protocol/voices.ts";

const LOADERS: Record<TtsEngineName, (config: TtsConfig) => Promise<SynthesisEngine>> = {
  flite: async (config) =>
    (await import("./flite/engine.ts")).FliteEngine.load({
      defaultVoice: defaultVoiceOf("flite", config.voice),
    }),
  espeak: async (config) =>
    (await import("./espeak_engine.ts")).EspeakEngine.load(defaultVoiceOf("espeak", config.voice)),
  vits: async (config) => (await import("./vits_engine.ts")).VitsEngine.load(config),
};

export function loadSynthesisEngine(config: TtsConfig): Promise<SynthesisEngine> {
  return LOADERS[config.engine](config);
}
