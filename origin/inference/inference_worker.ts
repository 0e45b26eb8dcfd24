/**
 * Inference worker entrypoint (Deno Web Worker). Loads the engines named in its `init` message (ASR, TTS, VAD)
 * with onnxruntime `intraOpNumThreads` from the config, then serves one job at a time. It never imports wrtc.
 */
/// <reference lib="deno.worker" />
import type { FromWorker, Job, ToWorker, WorkerInit } from "./protocol.ts";
import type { AsrEngine, AsrStream } from "../asr/engine.ts";
import type { SynthesisEngine, TtsConfig } from "../tts/engine.ts";
import type { TtsEngineName } from "../../protocol/engines.ts";
import type { SileroVad } from "../pipeline/silero_vad.ts";
import type { DenoiseStates } from "../audio/denoise_states.ts";
import { asInt16, floatToInt16, resampleAll } from "../../lib/audio/resampler.ts";
import os from "node:os";
import { EngineError, fromWire, toWire } from "./errors.ts";
import { renderSsml } from "../tts/ssml_render.ts";
import { trimEdges } from "../tts/trim_edges.ts";
import { MAX_SPEED, MIN_SPEED } from "../../protocol/voices.ts";
import { registry } from "../../lib/metrics.ts";

let asr: AsrEngine | null = null;
let vad: SileroVad | null = null;
let denoise: DenoiseStates | null = null;
let ttsConfig: TtsConfig | null = null;
const tts = new Map<TtsEngineName, Promise<SynthesisEngine>>();
/** Open recognition streams by the caller's id, with the segment their running utterance belongs to. */
const streams = new Map<string, { stream: AsrStream; segment: number | null }>();

function getStream(id: string): { stream: AsrStream; segment: number | null } {
  const s = streams.get(id);
  if (!s) throw new EngineError(`no open recognition stream ${id} in this worker`);
  return s;
}

/** Feeds a segment's audio; a different segment first drops the unfinished utterance of the previous one. */
function feedStream(id: string, segment: number, pcm: Float32Array): AsrStream {
  const s = getStream(id);
  if (s.segment !== segment) {
    if (s.segment !== null) s.stream.cancel();
    s.segment = segment;
  }
  if (pcm.length) s.stream.process(pcm);
  return s.stream;
}

function post(msg: FromWorker, transfer: Transferable[] = []): void {
  self.postMessage(msg, transfer);
}

function getTts(engine: TtsEngineName): Promise<SynthesisEngine> {
  if (!ttsConfig) throw new EngineError("this worker has no synthesis engines");
  let p = tts.get(engine);
  if (!p) {
    const cfg = { ...ttsConfig, engine };
    p = import("../tts/factory.ts").then((m) => m.loadSynthesisEngine(cfg));
    tts.set(engine, p);
  }
  return p;
}

/**
 * Lower this thread's scheduling priority by `increment` relative to the process main thread (own tid from
 * /proc/thread-self; the main thread's tid is the pid). Best effort.
 */
function renice(increment: number): string | null {
  try {
    const tid = Number(Deno.readLinkSync("/proc/thread-self").split("/").pop());
    if (!Number.isInteger(tid)) return null;
    const base = os.getPriority(Deno.pid);
    os.setPriority(tid, Math.min(19, base + increment));
    return `nice:${os.getPriority(tid)}`;
  } catch {
    return null;
  }
}

async function init(cfg: WorkerInit): Promise<string[]> {
  const loaded: string[] = [];
  if (cfg.nice !== undefined) {
    const r = renice(cfg.nice);
    if (r) loaded.push(r);
  }
  if (cfg.vad) {
    const { SileroVad, defaultSileroModelPath } = await import("../pipeline/silero_vad.ts");
    vad = await SileroVad.load(cfg.vad.modelPath ?? defaultSileroModelPath(), cfg.vad.intraOpNumThreads);
    loaded.push("vad");
  }
  if (cfg.denoise) {
    const { DenoiseStates } = await import("../audio/denoise_states.ts");
    const { loadRnnoise } = await import("../audio/rnnoise.ts");
    await loadRnnoise();
    denoise = new DenoiseStates();
    loaded.push("denoise");
  }
  if (cfg.asr) {
    const { loadAsrEngine } = await import("../asr/factory.ts");
    asr = await loadAsrEngine(cfg.asr);
    loaded.push(`asr:${cfg.asr.engine}`);
  }
  if (cfg.tts) {
    ttsConfig = cfg.tts;
    await getTts(cfg.tts.engine);
    loaded.push(`tts:${cfg.tts.engine}`);
  }
  return loaded;
}

async function run(job: Job): Promise<{ value: unknown; transfer: Transferable[] }> {
  switch (job.kind) {
    case "asr": {
      if (!asr) throw new EngineError("this worker has no ASR engine");
      return {
        value: await asr.transcribe(job.pcm16k, { final: job.final, language: job.language }),
        transfer: [],
      };
    }
    case "stream_open": {
      if (!asr?.openAsrStream) throw new EngineError(`ASR engine ${asr?.name ?? "(none)"} does not stream`);
      if (streams.has(job.stream)) throw new EngineError(`recognition stream ${job.stream} is already open`);
      streams.set(job.stream, { stream: await asr.openAsrStream(), segment: null });
      return { value: { streams: streams.size }, transfer: [] };
    }
    case "stream_feed": {
      const s = feedStream(job.stream, job.segment, job.pcm16k);
      return { value: { partial: job.partial ? s.partial() : null }, transfer: [] };
    }
    case "stream_finish": {
      const s = feedStream(job.stream, job.segment, job.pcm16k);
      getStream(job.stream).segment = null;
      return { value: s.finish(), transfer: [] };
    }
    case "stream_close": {
      const s = streams.get(job.stream);
      streams.delete(job.stream);
      s?.stream.close();
      return { value: { closed: s !== undefined }, transfer: [] };
    }
    case "tts": {
      const engine = await getTts(job.engine ?? ttsConfig!.engine);
      const r = job.ssml
        ? await renderSsml(engine, job.ssml, {
          voice: job.voice,
          speed: job.speed,
          minSpeed: MIN_SPEED,
          maxSpeed: MAX_SPEED,
        })
        : await engine.synthesize(job.text, job.voice, { speed: job.speed, words: job.words });
      const t = job.trim ? trimEdges({ ...r, pcm: asInt16(r.pcm) }, job.trim) : r;
      let pcm = t.pcm, sampleRate = t.sampleRate;
      if (job.outRate && job.outRate !== r.sampleRate) {
        // 8 zero crossings: synthetic voice has little energy near Nyquist; images stay > 60 dB down (tested).
        pcm = floatToInt16(resampleAll(t.pcm, t.sampleRate, job.outRate, { zerosPerSide: 8 }));
        sampleRate = job.outRate;
      }
      return { value: { ...t, pcm, sampleRate }, transfer: [pcm.buffer as ArrayBuffer] };
    }
    case "voices": {
      const engine = await getTts(job.engine ?? ttsConfig!.engine);
      return { value: await engine.listVoices(), transfer: [] };
    }
    case "vad": {
      if (!vad) throw new EngineError("this worker has no VAD");
      return { value: await vad.runSequences(job.items), transfer: [] };
    }
    case "denoise": {
      if (!denoise) throw new EngineError("this worker has no noise suppression");
      const r = await denoise.run(job);
      return { value: r, transfer: r.frames.map((f) => f.buffer as ArrayBuffer) };
    }
    case "crash":
      setTimeout(() => {
        throw new Error("inference worker crash requested");
      }, 0);
      return await new Promise(() => {});
    case "fail":
      throw fromWire(job.error);
    case "sleep": {
      const until = performance.now() + job.ms;
      while (performance.now() < until) { /* busy, like a synchronous inference */ }
      return { value: { slept: job.ms }, transfer: [] };
    }
  }
}

async function closeAll(): Promise<void> {
  for (const s of streams.values()) s.stream.close();
  streams.clear();
  const engines = await Promise.allSettled([...tts.values()]);
  await Promise.allSettled([
    asr?.dispose(),
    vad?.close(),
    ...engines.map((e) => e.status === "fulfilled" ? e.value.close() : undefined),
  ]);
  denoise?.closeAll();
  asr = null;
  vad = null;
  denoise = null;
  tts.clear();
}

/**
 * The engine's idle-time step (a warm decoder), after a job's result is posted: it delays the next job, never the
 * one just served. A failure here is the next job's to meet.
 */
function housekeeping(): void {
  try {
    asr?.housekeeping?.();
  } catch { /* a decoder that cannot be built now is built on demand, with its error then */ }
}

// This isolate's metrics (decoders, synthesis, noise suppression) reach the process's /metrics through the
// pool: a snapshot every `metricsEveryMs` when it changed since the last one sent.
registry.gauge("parley_inference_worker_heap_used_bytes", "V8 heap in use by this inference worker's isolate")
  .collect(() => Deno.memoryUsage().heapUsed);
let metricsTimer: ReturnType<typeof setInterval> | undefined;
let lastMetrics = "";
function sendMetrics(): void {
  const families = registry.snapshot();
  const text = JSON.stringify(families);
  if (text === lastMetrics) return;
  lastMetrics = text;
  post({ type: "metrics", families });
}

// Jobs are served strictly one at a time (onnxruntime-node runs synchronously anyway).
let chain: Promise<void> = Promise.resolve();

self.onmessage = (e: MessageEvent<ToWorker>) => {
  const msg = e.data;
  if (msg.type === "init") {
    const t0 = performance.now();
    clearInterval(metricsTimer);
    metricsTimer = setInterval(sendMetrics, msg.init.metricsEveryMs ?? 1000);
    chain = chain.then(() =>
      init(msg.init).then(
        (loaded) => post({ type: "ready", loaded, loadMs: performance.now() - t0 }),
        (err) => post({ type: "init_error", error: String(err?.stack ?? err) }),
      )
    );
  } else if (msg.type === "job") {
    chain = chain.then(async () => {
      const t0 = performance.now();
      try {
        const { value, transfer } = await run(msg.job);
        post({ type: "result", id: msg.id, ok: true, value, busyMs: performance.now() - t0 }, transfer);
      } catch (err) {
        post({
          type: "result",
          id: msg.id,
          ok: false,
          error: toWire(err),
          busyMs: performance.now() - t0,
        });
      }
      housekeeping();
    });
  } else if (msg.type === "close") {
    chain = chain.then(async () => {
      await closeAll();
      clearInterval(metricsTimer);
      sendMetrics();
      post({ type: "closed" });
    });
  }
};
