/**
 * Session churn with the streaming sphinx recognizer, run in its own process so its RSS, threads and fds are its
 * own: an EngineHub (2 speech workers, ASR_ENGINE=sphinx) and `sessions` pipelines, `concurrency` at a time, each
 * playing silence, ~`speechMs` of human speech (pocketsphinx-testdata LibriVox) and the silence that ends its
 * segment, waiting for the confirmed result, then closing. Audio goes in faster than real time: the subject is
 * native memory, not latency.
 *
 *   deno run -A --unstable-worker-options origin/pipeline/stream_churn.ts --sessions 60 [--concurrency 8]
 *     [--speech-ms 800] [--settle-ms 3000]
 *
 * Prints one JSON line per checkpoint (`ready`: hub loaded, warm decoders built; `warm`: after a sixth of the
 * sessions; `end`: after all; `settled`: `--settle-ms` later, the burst's extra decoders freed), then a summary
 * line `{confirmed, errors, sessions}`. `anonKb` (RssAnon) is what leaked native memory grows; the model files
 * are memory-mapped, so VmRSS also moves with the page cache. `decoders` (PocketSphinx decoders alive, all
 * workers) and `workerHeapMb` (the workers' V8 heaps) come from the workers' metrics, as `/metrics` shows them,
 * up to a second old: they tell decoders kept warm from memory that nothing holds.
 */
import { EngineHub } from "./engine_hub.ts";
import { concat, FakeHost, feed, silence } from "./host_double.ts";
import { engineHubConfig } from "../engine_config.ts";
import { parseConfig } from "../../lib/config.ts";
import { SessionOptions, type TranscriptEvent } from "../../protocol/session_messages.ts";
import { configureLogging } from "../../lib/log.ts";
import { librivoxUtterances, readWav16k } from "../asr/sphinx/sphinx_testdata.ts";
import { floatToInt16, int16ToFloat, resampleAll } from "../../lib/audio/resampler.ts";
import { registry } from "../../lib/metrics.ts";

export interface StreamChurnSample {
  phase: "ready" | "warm" | "end" | "settled";
  sessions: number;
  rssKb: number;
  anonKb: number;
  threads: number;
  fds: number;
  decoders: number;
  workerHeapMb: number;
  /** This isolate's V8 heap in use (the pipelines, hosts and their events live here). */
  mainHeapMb: number;
}

/** Sum of a metric's samples over all label sets in the process registry's exposition. */
function metricSum(name: string): number {
  let sum = 0;
  for (const line of registry.render().split("\n")) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.split(" ").at(-1));
  }
  return sum;
}

export interface StreamChurnSummary {
  sessions: number;
  confirmed: number;
  errors: number;
}

function sample(phase: StreamChurnSample["phase"], sessions: number): StreamChurnSample {
  const status = Deno.readTextFileSync("/proc/self/status");
  const kb = (field: string) => Number(status.match(new RegExp(`${field}:\\s+(\\d+)`))?.[1] ?? NaN);
  const count = (dir: string) => [...Deno.readDirSync(dir)].length;
  return {
    phase,
    sessions,
    rssKb: kb("VmRSS"),
    anonKb: kb("RssAnon"),
    threads: count("/proc/self/task"),
    fds: count("/proc/self/fd"),
    decoders: metricSum("parley_sphinx_decoders_open"),
    workerHeapMb: Math.round(metricSum("parley_inference_worker_heap_used_bytes") / 1e5) / 10,
    mainHeapMb: Math.round(Deno.memoryUsage().heapUsed / 1e5) / 10,
  };
}

function arg(name: string, dflt: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : dflt;
}

async function main(): Promise<void> {
  configureLogging({ level: "error", sink: () => {} });
  const sessions = arg("sessions", 60);
  const concurrency = arg("concurrency", 8);
  const speechMs = arg("speech-ms", 800);
  // Surplus idle decoders are freed after this long idle (production: 60 s), checked every second.
  const idleDecoderMs = arg("idle-decoder-ms", 1000);
  const settleMs = arg("settle-ms", idleDecoderMs + 4000);
  const emit = (s: unknown) => console.log(JSON.stringify(s));
  const hub = await EngineHub.create({
    ...engineHubConfig(parseConfig({ ASR_ENGINE: "sphinx", SPHINX_IDLE_DECODER_MS: String(idleDecoderMs) })),
    workers: 2,
    jobTimeoutMs: 120_000,
  });
  const utts = librivoxUtterances();
  const speech = utts.map((u) => {
    const pcm = floatToInt16(resampleAll(int16ToFloat(readWav16k(u.path)), 16000, 48000));
    return pcm.subarray(48 * 500, 48 * (500 + speechMs)); // past the recording's leading silence
  });
  // The warm decoders exist once the hub is loaded, but their count reaches this isolate with the workers'
  // next metrics batch: wait for it (bounded) so that `ready` counts them.
  for (let t = 0; t < 50 && metricSum("parley_sphinx_decoders_open") === 0; t++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  emit(sample("ready", 0));
  const warmAt = Math.max(1, Math.floor(sessions / 6));
  let started = 0, done = 0, confirmed = 0, errors = 0;
  const one = async (i: number) => {
    const host = new FakeHost(`churn-${i}`);
    const p = hub.createPipeline(host, SessionOptions.parse({ mode: "transcribe" }));
    try {
      await feed(p, host, concat(silence(200), speech[i % speech.length], silence(900)), false);
      await p.drain();
      const t0 = performance.now();
      const has = () =>
        host.events.some((e) =>
          (e.type === "transcript" && (e as TranscriptEvent).status === "confirmed") || e.type === "error"
        );
      // a segment the junk filter drops sends nothing: wait a bounded time
      while (!has() && performance.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 20));
      if (host.events.some((e) => e.type === "transcript" && (e as TranscriptEvent).status === "confirmed")) {
        confirmed++;
      }
      if (host.events.some((e) => e.type === "error")) errors++;
    } finally {
      await p.close();
    }
  };
  const worker = async () => {
    while (started < sessions) {
      const i = started++;
      await one(i);
      done++;
      if (done === warmAt) emit(sample("warm", done));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, sessions) }, worker));
  emit(sample("end", done));
  await new Promise((r) => setTimeout(r, settleMs));
  emit(sample("settled", done));
  emit({ sessions: done, confirmed, errors } satisfies StreamChurnSummary);
  await hub.close();
}

if (import.meta.main) {
  await main();
  Deno.exit(0); // worker pools closed; do not wait for the runtime's idle timers
}
