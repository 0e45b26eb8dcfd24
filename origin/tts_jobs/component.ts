/**
 * Builds an origin's TTS job worker from config: the synthesis pool (`TTS_WORKERS` + `TTS_INTERACTIVE_WORKERS`
 * isolates with the default engine) and the claim loops, behind the process-wide live-priority gate.
 * `TTS_WORKERS=0`: this origin synthesizes no jobs but still helps reclaim expired leases.
 */
import type { Database } from "../../db/client.ts";
import type { Config } from "../../lib/config.ts";
import type { Logger } from "../../lib/log.ts";
import { livePriority } from "./priority_gate.ts";
import { type ChunkSynthesizer, PoolSynthesizer } from "./synth.ts";
import { TtsJobWorker } from "./worker.ts";
import { ttsConfig } from "../engine_config.ts";

const noSynth: ChunkSynthesizer = {
  synthesize: () => Promise.reject(new Error("this origin runs no TTS workers")),
  ready: () => true,
  close: () => Promise.resolve(),
};

export async function createTtsJobWorker(
  config: Config,
  database: Database,
  log: Logger,
  over: { synth?: ChunkSynthesizer; nodeId?: string } = {},
): Promise<TtsJobWorker> {
  const interactive = config.TTS_WORKERS > 0 ? config.TTS_INTERACTIVE_WORKERS : 0;
  const synth = over.synth ?? (config.TTS_WORKERS > 0
    ? await PoolSynthesizer.create({
      workers: config.TTS_WORKERS + interactive,
      tts: ttsConfig(config),
    })
    : noSynth);
  return await TtsJobWorker.start(database, {
    nodeId: over.nodeId ?? config.NODE_ID ?? `origin-${Deno.hostname()}-${Deno.pid}`,
    concurrency: config.TTS_WORKERS,
    interactiveSlots: interactive,
    leaseMs: config.TTS_LEASE_MS,
    pollMs: config.TTS_POLL_MS,
    order: config.TTS_CLAIM_ORDER,
    maxAttempts: config.TTS_MAX_ATTEMPTS,
    synth,
    gate: livePriority,
    share: {
      interactiveChars: config.TTS_INTERACTIVE_RANK_CHARS,
      batchEvery: config.TTS_BATCH_SHARE_EVERY,
      liveYieldMaxMs: config.TTS_LIVE_YIELD_MAX_MS,
    },
    storage: { codec: config.TTS_AUDIO_CODEC, bitrate: config.TTS_AUDIO_OPUS_BITRATE },
    log,
  });
}
