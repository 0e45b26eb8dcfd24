/**
 * Builds the configured ASR engine. Each engine's module is imported only when it is the one configured (the
 * whisper engine pulls in Transformers.js). A new engine needs its name in protocol/engines.ts and a loader
 * here: the table is keyed by that list, so a name without a loader does not type-check.
 */
import type { AsrEngineName } from "../../protocol/engines.ts";
import type { AsrConfig, AsrEngine } from "./engine.ts";

/**
 * PocketSphinx decoders per speech worker. A stream holds a decoder only while an utterance runs, so this bounds
 * the utterances one worker decodes at once, not its sessions; each decoder is its own model copy (~90 MB). A
 * worker is one thread; with the `live` search a decoder needs about a tenth of a core in real time, so one
 * worker keeps up with about eight utterances at once, and more only fall behind: the extra ones wait (their
 * audio kept) for a decoder to come free.
 */
export const SPHINX_DECODERS_PER_WORKER = 8;
/** Built at worker start, before the origin reports ready: the first utterances pay no model load. */
export const SPHINX_PREWARM_PER_WORKER = 2;
/** Idle decoders a worker keeps for good (more are freed after `SPHINX_IDLE_DECODER_MS` idle). */
export const SPHINX_KEEP_IDLE = 2;
/**
 * Idle decoders a worker keeps ready, built off its thread between jobs: a new utterance normally finds one, and
 * a burst of them waits for a build without stalling the worker's other streams.
 */
export const SPHINX_WARM_IDLE = 2;

const LOADERS: Record<AsrEngineName, (config: AsrConfig) => Promise<AsrEngine>> = {
  ctc: async (config) => (await import("./ctc_engine.ts")).CtcEngine.load(config),
  whisper: async (config) => (await import("./whisper_engine.ts")).WhisperEngine.load(config),
  moonshine: async (config) => (await import("./moonshine/moonshine_engine.ts")).MoonshineEngine.load(config),
  sphinx: async (config) => {
    const { SphinxEngine } = await import("./sphinx/sphinx_engine.ts");
    return SphinxEngine.load({
      config: config.sphinx,
      maxDecoders: SPHINX_DECODERS_PER_WORKER,
      prewarm: SPHINX_PREWARM_PER_WORKER,
      keepIdle: SPHINX_KEEP_IDLE,
      warmIdle: SPHINX_WARM_IDLE,
      idleTimeoutMs: config.sphinx?.idleDecoderMs,
      asyncBuilds: true,
    });
  },
};

export function loadAsrEngine(config: AsrConfig): Promise<AsrEngine> {
  return LOADERS[config.engine](config);
}
