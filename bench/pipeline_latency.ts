/**
 * Speech pipeline latency and capacity, by feeding PCM in real time (10 ms frames) through EngineHub + pipelines
 * with a host double (no WebRTC):
 *
 *  A. Latency over ≥ 50 espeak utterances (a few sessions in parallel): end of speech in the input → `confirmed`
 *     event, and speech start → first `partial`, p50/p95 (goals: ≤ 600 ms incl. the silence window, ≤ 500 ms).
 *  B. Concurrency curve: N sessions each playing speech with pauses (~50% speech): confirmed latency, partials,
 *     process CPU (all threads), and event-loop 10 ms timer gaps measured concurrently as the proxy for outbound
 *     audio frames (a late 10 ms tick = a late outbound frame). Reports where confirmed p50 doubles vs 1 session.
 *     An utterance with no confirmed result is "missed"; it counts as lost (and ends the sustained range) unless
 *     the recognizer decoded it and dropped the result (empty, junk such as a decoder loop, low confidence):
 *     that is the model's answer, the same at any load.
 *
 *   deno run -A --unstable-worker-options bench/pipeline_latency.ts
 *     [--engine ctc|whisper|sphinx|moonshine] [--model <folder|hub id>] [--workers 2] [--utterances 50] [--sessions 5]
 *     [--levels 1,10,25,50] [--level-seconds 12] [--nice 5]
 */
import { EngineHub, HUB_TUNING } from "../origin/pipeline/engine_hub.ts";
import { FakeHost } from "../origin/pipeline/host_double.ts";
import type { StreamingPipeline } from "../origin/pipeline/speech_pipeline.ts";
import type { AsrEngineName } from "../protocol/engines.ts";
import { engineHubConfig } from "../origin/engine_config.ts";
import { parseConfig } from "../lib/config.ts";
import { SessionOptions, type TranscriptEvent } from "../protocol/session_messages.ts";
import { configureLogging } from "../lib/log.ts";
import { registry } from "../lib/metrics.ts";
import { humanCorpus, wav16k } from "./human_corpus.ts";
import { readWav16k } from "../origin/asr/sphinx/sphinx_testdata.ts";
import { floatToInt16, int16ToFloat, resampleAll } from "../lib/audio/resampler.ts";
import { cpuSeconds, mainThreadCpuSeconds, percentile, pipelineSentences, table } from "./pipeline_util.ts";

configureLogging({ level: "error" });
const args = Deno.args;
const arg = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};

const modelsDir = new URL("../models/", import.meta.url).pathname;
const ctcAvailable = (() => {
  try {
    Deno.statSync(new URL("../origin/asr/ctc_decoder.ts", import.meta.url));
    Deno.statSync(`${modelsDir}parley-asr-en/onnx/model.onnx`);
    return true;
  } catch {
    return false;
  }
})();
const engine = arg("engine", ctcAvailable ? "ctc" : "whisper") as AsrEngineName;
const DEFAULT_MODEL: Partial<Record<AsrEngineName, string>> = {
  ctc: "parley-asr-en",
  whisper: "tiny-whisper",
  moonshine: "moonshine-tiny-en",
  sphinx: "pocketsphinx-en-us",
};
const model = arg("model", DEFAULT_MODEL[engine] ?? "");
const workers = Number(arg("workers", "2"));
const nUtterances = Number(arg("utterances", "50"));
const nSessionsA = Number(arg("sessions", "5"));
const levels = arg("levels", "1,10,25,50").split(",").map(Number);
const levelSeconds = Number(arg("level-seconds", "12"));
const workerNice = Number(arg("nice", String(HUB_TUNING.workerNice)));

const hub = await EngineHub.create({
  ...engineHubConfig(
    parseConfig({
      ASR_ENGINE: engine,
      ...(engine === "moonshine" ? { MOONSHINE_MODEL: model } : { ASR_MODEL: model }),
      MODELS_DIR: modelsDir,
    }),
  ),
  workers,
  workerNice,
});
console.log(
  `engine ${engine}:${model}, ${workers} speech workers (nice +${workerNice}) + 1 VAD worker, ` +
    `${navigator.hardwareConcurrency} cores, ` +
    `load avg at start ${Deno.loadavg()[0].toFixed(2)}`,
);

// ---------- audio material ----------

interface Clip {
  pcm: Int16Array;
  /** voiced region inside the clip, ms */
  voicedStart: number;
  voicedEnd: number;
}

function voicedBounds(pcm: Int16Array): [number, number] {
  let first = -1, last = -1;
  for (let f = 0; f * 480 < pcm.length; f++) {
    let s = 0;
    const end = Math.min(pcm.length, (f + 1) * 480);
    for (let i = f * 480; i < end; i++) s += (pcm[i] / 32768) ** 2;
    if (Math.sqrt(s / (end - f * 480)) > 0.01) {
      if (first < 0) first = f;
      last = f;
    }
  }
  return [first * 10, (last + 1) * 10];
}

const clips: Clip[] = [];
if (engine === "sphinx" || engine === "moonshine") {
  // the recognizers for human speech (PocketSphinx gives espeak speech mostly low-confidence results, dropped):
  // the human recordings of bench/human_corpus.ts, at 48 kHz as a peer sends them
  const cache = await Deno.makeTempDir({ prefix: "parley-latency-" });
  for (const rec of humanCorpus()) {
    const pcm16 = readWav16k(await wav16k(rec, cache));
    const pcm = floatToInt16(resampleAll(int16ToFloat(pcm16), 16000, 48000));
    const [a, b] = voicedBounds(pcm);
    clips.push({ pcm, voicedStart: a, voicedEnd: b });
  }
  console.log(`material: ${clips.length} human recordings (bench/human_corpus.ts)`);
} else {
  for (const t of pipelineSentences(Math.max(nUtterances, 24))) {
    const r = await hub.synthesize(t, { outRate: 48000 });
    const pcm = r.pcm as Int16Array;
    const [a, b] = voicedBounds(pcm);
    clips.push({ pcm, voicedStart: a, voicedEnd: b });
  }
}

// ---------- a session script: silence/utterance timeline with ground truth ----------

interface Script {
  pcm: Int16Array;
  truth: Array<{ start: number; end: number }>; // voiced ms in stream time
}

function makeScript(clipIdx: number[], gapMs: (i: number) => number, leadMs: number): Script {
  const parts: Int16Array[] = [new Int16Array(48 * leadMs)];
  const truth: Script["truth"] = [];
  let t = leadMs;
  clipIdx.forEach((ci, i) => {
    const c = clips[ci % clips.length];
    truth.push({ start: t + c.voicedStart, end: t + c.voicedEnd });
    parts.push(c.pcm);
    t += c.pcm.length / 48;
    const g = gapMs(i);
    parts.push(new Int16Array(48 * g));
    t += g;
  });
  const pcm = new Int16Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    pcm.set(p, o);
    o += p.length;
  }
  return { pcm, truth };
}

interface RunResult {
  confirmedLat: number[];
  firstPartialLat: number[];
  missedConfirmed: number;
  /** Confirmed results the recognizer decoded and then dropped (empty, junk such as a decoder loop, low confidence). */
  droppedResults: number;
  /** `error` events sessions got (a confirmed decode that failed). */
  errorEvents: number;
  noPartial: number;
  utterances: number;
  cpuCores: number;
  mainCpu: number;
  gaps: number[];
  wallS: number;
  partialsSent: number;
  partialsShed: number;
  /** Partial decodes that came back with no text to show (empty, junk or low confidence). */
  partialsEmpty: number;
  maxQueue: number;
  maxVadLagMs: number;
}

/** Feed all scripts in real time from one 10 ms clock (like the WebRTC sinks), collect events and loop gaps. */
/** Waits until the speech pool has had nothing queued or running for 300 ms. */
async function settled(): Promise<void> {
  let quiet = 0;
  while (quiet < 3) {
    await new Promise((r) => setTimeout(r, 100));
    const st = hub.stats();
    quiet = st.speechQueue === 0 && st.speechBusy === 0 ? quiet + 1 : 0;
  }
}

const droppedResults = () =>
  ["empty", "junk", "low_confidence"].reduce(
    (n, reason) => n + registry.counter("parley_transcripts_dropped_total", "").get({ reason }),
    0,
  );

async function run(scripts: Script[], tailMs = 4000): Promise<RunResult> {
  let errorEvents = 0;
  const dropped0 = droppedResults();
  const emptyPartials = () =>
    registry.counter("parley_partials_dropped_total", "").get({ reason: "empty_or_low_confidence" });
  const empty0 = emptyPartials();
  const sessions = scripts.map((s, i) => {
    const host = new FakeHost(`bench-${i}-${crypto.randomUUID().slice(0, 8)}`, "bench", false);
    const events: Array<{ e: TranscriptEvent; wall: number }> = [];
    host.onEvent = (e) => {
      if (e.type === "transcript") events.push({ e, wall: performance.now() });
      else if (e.type === "error") errorEvents++;
    };
    const p: StreamingPipeline = hub.createPipeline(host, SessionOptions.parse({ mode: "transcribe" }));
    const frames = Math.ceil(s.pcm.length / 480);
    return { script: s, host, p, events, frames, pushWall: new Float64Array(frames), next: 0 };
  });
  // streaming engines open one recognition stream per session at its start (it takes a warm decoder per
  // utterance): measure from when every session's stream is open
  await settled();
  const shed0 = registry.counter("parley_partials_dropped_total", "").get({ reason: "overloaded" }) +
    registry.counter("parley_partials_dropped_total", "").get({ reason: "SupersededError" }) +
    registry.counter("parley_partials_dropped_total", "").get({ reason: "in_flight" });
  const maxFrames = Math.max(...sessions.map((s) => s.frames));
  const gaps: number[] = [];
  let lastTick = performance.now();
  let maxQueue = 0, maxVadLagMs = 0;
  const gapTimer = setInterval(() => {
    const now = performance.now();
    gaps.push(now - lastTick);
    lastTick = now;
    maxQueue = Math.max(maxQueue, hub.stats().speechQueue);
    // VAD lag: audio pushed but not yet through VAD + segmenter
    for (const s of sessions) maxVadLagMs = Math.max(maxVadLagMs, s.next * 10 - s.p.position16k / 16);
  }, 10);
  const c0 = cpuSeconds();
  const m0 = mainThreadCpuSeconds();
  const t0 = performance.now();
  await new Promise<void>((done) => {
    const tick = () => {
      const due = Math.min(maxFrames, Math.floor((performance.now() - t0) / 10) + 1);
      for (const s of sessions) {
        while (s.next < due && s.next < s.frames) {
          const k = s.next++;
          const samples = new Int16Array(480);
          samples.set(s.script.pcm.subarray(k * 480, Math.min(s.script.pcm.length, (k + 1) * 480)));
          const now = performance.now();
          s.pushWall[k] = now;
          s.p.push({ samples, sampleRate: 48000, timestampMs: k * 10, receivedAt: now });
        }
      }
      if (sessions.every((s) => s.next >= s.frames)) {
        clearInterval(timer);
        done();
      }
    };
    const timer = setInterval(tick, 10);
  });
  // let the last confirmed results arrive
  const tEnd = performance.now();
  while (performance.now() - tEnd < tailMs) {
    await new Promise((r) => setTimeout(r, 50));
    const pending = hub.stats();
    if (pending.speechQueue === 0 && pending.speechBusy === 0 && performance.now() - tEnd > 800) break;
  }
  const wallS = (performance.now() - t0) / 1000;
  const cpuCores = (cpuSeconds() - c0) / wallS;
  const mainCpu = (mainThreadCpuSeconds() - m0) / wallS;
  clearInterval(gapTimer);
  const shed1 = registry.counter("parley_partials_dropped_total", "").get({ reason: "overloaded" }) +
    registry.counter("parley_partials_dropped_total", "").get({ reason: "SupersededError" }) +
    registry.counter("parley_partials_dropped_total", "").get({ reason: "in_flight" });

  const r: RunResult = {
    confirmedLat: [],
    firstPartialLat: [],
    missedConfirmed: 0,
    droppedResults: droppedResults() - dropped0,
    errorEvents,
    noPartial: 0,
    utterances: 0,
    cpuCores,
    mainCpu,
    gaps,
    wallS,
    partialsSent: 0,
    partialsShed: shed1 - shed0,
    partialsEmpty: emptyPartials() - empty0,
    maxQueue,
    maxVadLagMs,
  };
  for (const s of sessions) {
    r.partialsSent += s.events.filter((x) => x.e.status === "partial").length;
    for (const u of s.script.truth) {
      if (u.end > s.frames * 10) continue;
      r.utterances++;
      const overlaps = (e: TranscriptEvent) => e.start_ms < u.end && e.end_ms > u.start;
      const conf = s.events.find((x) => x.e.status === "confirmed" && overlaps(x.e));
      if (!conf) {
        r.missedConfirmed++;
        continue;
      }
      const endFrame = Math.min(s.frames - 1, Math.floor((u.end - 1) / 10));
      r.confirmedLat.push(conf.wall - s.pushWall[endFrame]);
      const part = s.events.find((x) => x.e.status === "partial" && x.e.segment_id === conf.e.segment_id);
      if (part) {
        const startFrame = Math.floor(u.start / 10);
        r.firstPartialLat.push(part.wall - s.pushWall[startFrame]);
      } else r.noPartial++;
    }
  }
  await Promise.all(sessions.map((s) => s.p.close()));
  for (const s of sessions) s.host.close();
  return r;
}

const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : "-");
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "-");

// ---------- A: latency over ≥ 50 utterances ----------
{
  const per = Math.ceil(nUtterances / nSessionsA);
  const scripts = Array.from(
    { length: nSessionsA },
    (_, s) =>
      makeScript(
        Array.from({ length: per }, (_, i) => s * per + i),
        (i) => 900 + ((i * 137 + s * 61) % 500),
        300 + s * 170,
      ),
  );
  const r = await run(scripts);
  const late = r.gaps.filter((g) => g > 20).length;
  console.log(
    `\nA. Latency, ${r.utterances} utterances in ${nSessionsA} concurrent sessions (${r.wallS.toFixed(0)} s)`,
  );
  console.log(table(["metric", "p50 ms", "p95 ms", "n", "goal"], [
    [
      "end of speech → confirmed",
      f0(percentile(r.confirmedLat, 50)),
      f0(percentile(r.confirmedLat, 95)),
      String(r.confirmedLat.length),
      "≤ 600 p50",
    ],
    [
      "speech start → first partial",
      f0(percentile(r.firstPartialLat, 50)),
      f0(percentile(r.firstPartialLat, 95)),
      String(r.firstPartialLat.length),
      "≤ 500",
    ],
  ]));
  console.log(
    `missed confirmed: ${r.missedConfirmed} (results dropped by the recognizer: ${r.droppedResults}, error events: ${r.errorEvents}), segments without partial: ${r.noPartial}, partials sent ${r.partialsSent}, ` +
      `partials skipped ${r.partialsShed}, partial decodes with no text ${r.partialsEmpty}; loop 10 ms ticks: p50 ${
        f1(percentile(r.gaps, 50))
      } ms, ` +
      `p99 ${f1(percentile(r.gaps, 99))} ms, max ${
        f1(Math.max(...r.gaps))
      } ms, late(>20 ms) ${late}/${r.gaps.length}; process CPU ${f1(r.cpuCores * 100)}%, main thread ${
        f1(r.mainCpu * 100)
      }%, max ASR queue ${r.maxQueue}, max VAD lag ${f0(r.maxVadLagMs)} ms`,
  );
  console.log(`(end-of-speech silence window: 400 ms of it is in the confirmed latency by design)`);
}

// ---------- B: concurrency curve ----------
{
  const rows: string[][] = [];
  {
    // idle baseline: the same tick measurement with no session (machine noise, other processes)
    const gaps: number[] = [];
    let last = performance.now();
    const c0 = cpuSeconds(), t0 = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      gaps.push(now - last);
      last = now;
    }, 10);
    await new Promise((r) => setTimeout(r, 3000));
    clearInterval(timer);
    const cpu = (cpuSeconds() - c0) / ((performance.now() - t0) / 1000);
    const late = gaps.filter((g) => g > 20).length / gaps.length;
    rows.push([
      "0 (idle)",
      "-",
      "-",
      "-",
      "-",
      "-",
      "-",
      f1(cpu * 100) + "%",
      "-",
      "-",
      "-",
      "-",
      "-",
      f1(percentile(gaps, 50)),
      f1(percentile(gaps, 99)),
      f1(Math.max(...gaps)),
      (late * 100).toFixed(2) + "%",
    ]);
  }
  let baseline = NaN;
  const lateLimit = Number(rows[0][16].replace("%", "")) / 100 + 0.02; // idle late ratio + 2 points
  let sustained = 0;
  let limitReason = "";
  for (const n of levels) {
    const scripts = Array.from({ length: n }, (_, s) => {
      // ~50% speech: each utterance followed by a pause as long as itself; staggered starts
      const idx = Array.from({ length: 8 }, (_, i) => (s * 3 + i) % clips.length);
      const sc = makeScript(idx, (i) => Math.round(clips[idx[i]].pcm.length / 48), 200 + ((s * 397) % 2000));
      // cut at levelSeconds, then 1 s of silence so the last segment can end
      const cut = levelSeconds * 100 * 480;
      const pcm = new Int16Array(cut + 48000);
      pcm.set(sc.pcm.subarray(0, cut));
      return { pcm, truth: sc.truth.filter((u) => u.end < levelSeconds * 1000 - 100) };
    });
    const r = await run(scripts, 6000);
    const p50 = percentile(r.confirmedLat, 50);
    if (n === levels[0]) baseline = p50;
    const late = r.gaps.filter((g) => g > 20).length / Math.max(1, r.gaps.length);
    // A missed utterance whose result the recognizer decoded and dropped (a decoder loop, say) is the model's
    // answer, not load; one with no result at all, or an error event, is a loss.
    const lost = Math.max(0, r.missedConfirmed - r.droppedResults) + r.errorEvents;
    const ok = p50 <= 2 * baseline && late < lateLimit && lost === 0;
    if (ok && !limitReason) sustained = n;
    else if (!limitReason) {
      limitReason = p50 > 2 * baseline
        ? `confirmed p50 doubled at ${n}`
        : late >= lateLimit
        ? `late 10 ms ticks > idle + 2 points at ${n}`
        : `confirmed results lost at ${n}`;
    }
    rows.push([
      String(n),
      String(r.utterances),
      f0(p50),
      f0(percentile(r.confirmedLat, 95)),
      `${r.missedConfirmed} (${r.droppedResults} dropped, ${r.errorEvents} errors)`,
      f0(percentile(r.firstPartialLat, 50)),
      `${r.partialsSent}/${r.partialsShed}`,
      f1(r.cpuCores * 100) + "%",
      f1(r.mainCpu * 100) + "%",
      String(r.maxQueue),
      f0(r.maxVadLagMs),
      f0((r.cpuCores * 1000) / n),
      f0((navigator.hardwareConcurrency * 1000 * 0.8) / ((r.cpuCores * 1000) / n)),
      f1(percentile(r.gaps, 50)),
      f1(percentile(r.gaps, 99)),
      f1(Math.max(...r.gaps)),
      (late * 100).toFixed(2) + "%",
    ]);
    console.log(`  level ${n} done (${r.wallS.toFixed(0)} s)`);
  }
  console.log(`\nB. Concurrency curve (~50% speech per session, ${levelSeconds} s per level)`);
  console.log(table([
    "sessions",
    "utts",
    "confirmed p50",
    "p95",
    "missed (dropped by the recognizer, error events)",
    "1st partial p50",
    "partials sent/skipped",
    "CPU (of 1 core)",
    "main thread CPU",
    "max ASR queue",
    "max VAD lag ms",
    "CPU ms per session·s",
    "projected sessions @80% of cores",
    "tick p50",
    "tick p99",
    "tick max",
    "late ticks",
  ], rows));
  console.log(
    `sustained without confirmed p50 doubling (baseline ${
      f0(baseline)
    } ms) or late ticks: ${sustained} sessions` +
      (limitReason ? ` (${limitReason})` : " (all levels passed)"),
  );
  console.log(
    "CPU ms per session·s = process CPU (all threads) per second of session audio; the projection divides 80% of\n" +
      "the cores by it: the capacity of a dedicated box, independent of other load on this one. With partials shed\n" +
      "under overload the per-session cost falls, so projections from overloaded levels are optimistic.",
  );
}

await hub.close();
Deno.exit(0);
