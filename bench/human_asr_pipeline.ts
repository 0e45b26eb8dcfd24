/**
 * The `pipeline` column of bench/human_asr.ts: each recording through a session's speech pipeline in this
 * process (48 kHz frames → resampler → Silero VAD → segmenter → the streaming sphinx recognizer in the
 * inference workers), with no WebRTC and no Opus, fed faster than real time, then ended like a session that
 * closes (`finish()`). Beside `live` it tells what the VAD/segmentation path costs apart from the codec and the
 * real-time transport. `--pipeline-min-confidence X` overrides the low-confidence filter (0 turns it off).
 */
import type { AsrSystem, SystemResult } from "./human_asr.ts";
import type { HumanRecording } from "./human_corpus.ts";
import { readWav16k } from "../origin/asr/sphinx/sphinx_testdata.ts";
import { floatToInt16, int16ToFloat, resampleAll } from "../lib/audio/resampler.ts";
import { EngineHub } from "../origin/pipeline/engine_hub.ts";
import { concat, FakeHost, feed, silence } from "../origin/pipeline/host_double.ts";
import { engineHubConfig } from "../origin/engine_config.ts";
import { parseConfig } from "../lib/config.ts";
import { SessionOptions, type TranscriptEvent } from "../protocol/session_messages.ts";
import type { PipelineConfig } from "../origin/pipeline/speech_pipeline.ts";

const TAIL_MS = 1500;

export async function pipelineSystem(env: Record<string, string> = {}): Promise<AsrSystem> {
  const hub = await EngineHub.create({
    ...engineHubConfig(parseConfig({ ASR_ENGINE: "sphinx", ...env })),
    jobTimeoutMs: 120_000,
    // a loaded shared machine can take minutes to load the workers' models
    initTimeoutMs: 600_000,
  });
  const mi = Deno.args.indexOf("--pipeline-min-confidence");
  const config: Partial<PipelineConfig> = mi >= 0 ? { minConfidence: Number(Deno.args[mi + 1]) } : {};
  let n = 0;
  return {
    name: env.ASR_ENGINE && env.ASR_ENGINE !== "sphinx" ? `pipeline_${env.ASR_ENGINE}` : "pipeline",
    what:
      `session speech pipeline in process (Silero VAD + segmenter + ASR_ENGINE=${
        env.ASR_ENGINE ?? "sphinx"
      }), no WebRTC/Opus` +
      (mi >= 0 ? `, minConfidence ${config.minConfidence}` : ""),
    async recognize(_rec: HumanRecording, path: string): Promise<SystemResult> {
      const pcm = floatToInt16(resampleAll(int16ToFloat(readWav16k(path)), 16000, 48000));
      const host = new FakeHost(`human-${++n}`);
      const p = hub.createPipeline(host, SessionOptions.parse({ mode: "transcribe" }), config);
      const t0 = performance.now();
      try {
        await feed(p, host, concat(pcm, silence(TAIL_MS)), false);
        await p.finish();
        const text = host.events
          .filter((e): e is TranscriptEvent & { seq: number } =>
            e.type === "transcript" && e.status === "confirmed"
          )
          .sort((a, b) => a.segment_id - b.segment_id)
          .map((e) => e.alternatives[0].text)
          .join(" ");
        return { text, decodeMs: performance.now() - t0, cpuMs: NaN };
      } finally {
        await p.close();
        host.close();
      }
    },
    close: () => hub.close(),
  };
}
