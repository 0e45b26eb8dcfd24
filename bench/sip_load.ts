/**
 * Phone-call load: SIPp places N concurrent calls (default 20) into Parley's SIP gateway, each playing an
 * espeak-ng sentence as G.711 RTP (pcap play) while Parley transcribes it, then hangs up. The gateway runs in
 * this process exactly as the origin runs it (SipUas → SipGateway → SipSession → EngineHub pipeline, PGlite),
 * so the figures are the origin's own:
 *   - CPU: this process (with its VAD/ASR workers) in cores, over the run;
 *   - confirmed latency p50/p99: transcript_segments.latency_ms (end of speech → confirmed, as stored);
 *   - outbound RTP pacing: gaps between consecutive 20 ms send ticks, p50/p99/max, over every call;
 *   - calls: answered, ended by the caller's BYE (`remote_hangup`), anything else counts as dropped.
 * Prints a Markdown table (for docs/benchmarks.md and release notes), then the raw figures as JSON. Exits 1
 * when a call was dropped or SIPp failed.
 *
 *   deno run -A --unstable-worker-options bench/sip_load.ts [--calls 20] [--hold-ms 9000] [--asr auto]
 *   SIP_LOAD_CALLS=3 deno task bench sip_load
 *
 * `--asr` is ASR_ENGINE (default: the origin's default, `auto`); every call runs recognition (mode transcribe).
 */
import { sql } from "drizzle-orm";
import { openTestDatabase } from "../db/testing.ts";
import { createTenant } from "../db/api_keys.ts";
import { createSipNumber } from "../db/sip.ts";
import { parseConfig } from "../lib/config.ts";
import { configureLogging } from "../lib/log.ts";
import { asrEngineChoice, engineHubConfig } from "../origin/engine_config.ts";
import { wordErrorRate } from "../origin/asr/error_rate.ts";
import { EngineHub } from "../origin/pipeline/engine_hub.ts";
import { SessionManager } from "../origin/session/session_manager.ts";
import { SipGateway } from "../origin/call/sip_gateway.ts";
import { SipUas } from "../origin/sip/uas.ts";
import { floatToInt16, int16ToFloat, resampleAll } from "../lib/audio/resampler.ts";
import { readWav } from "../origin/pipeline/wav.ts";
import { rtpPcap } from "./rtp_pcap.ts";

function arg(name: string, def: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : def;
}
const CALLS = Number(arg("calls", Deno.env.get("SIP_LOAD_CALLS") ?? "20"));
const HOLD_MS = Number(arg("hold-ms", "9000"));
const ASR = arg("asr", "auto");
if (!Number.isInteger(CALLS) || CALLS < 1) {
  throw new Error(`--calls must be a positive integer, got ${CALLS}`);
}
// `--wav F --ref "words"`: a recording (any rate, 16-bit mono WAV) and its transcript instead of espeak-ng's
// sentence, e.g. a pocketsphinx-testdata LibriVox file to judge PocketSphinx on human speech over the phone.
const WAV = arg("wav", "");
const SENTENCE = WAV ? arg("ref", "") : "the hem fell shortly below her knees";
if (WAV && !SENTENCE) throw new Error("--wav needs --ref with its transcript");

configureLogging({ level: "warn" });
const pct = (xs: number[], p: number) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))];
};

// ---- material: espeak sentence (or --wav) → 8 kHz → G.711 RTP pcap (1 s silence, speech, 2 s silence) ----
const tmp = Deno.makeTempDirSync({ prefix: "sip-load-" });
const raw = WAV || `${tmp}/s.wav`;
if (!WAV) await new Deno.Command("espeak-ng", { args: ["-w", raw, SENTENCE] }).output();
const w = readWav(raw);
const speech = floatToInt16(resampleAll(int16ToFloat(w.samples), w.sampleRate, 8000));
const pcm = new Int16Array(8000 + speech.length + 16000);
pcm.set(speech, 8000);
const pcapPath = `${tmp}/speech.pcap`;
Deno.writeFileSync(pcapPath, rtpPcap(pcm, 8));
const scenario = `${tmp}/load.xml`;
Deno.writeTextFileSync(
  scenario,
  Deno.readTextFileSync(new URL("./sip_load.xml", import.meta.url))
    .replace("@PCAP@", pcapPath)
    .replace("@HOLD_MS@", String(Math.max(HOLD_MS, Math.ceil(pcm.length / 8) + 500))),
);

// ---- the gateway, as the origin assembles it ----
const database = await openTestDatabase();
const tenant = await createTenant(database, "sip-load");
await createSipNumber(database, { tenantId: tenant.id, number: "200", options: { mode: "transcribe" } });
const parsedConfig = parseConfig({ ASR_ENGINE: ASR });
const engine = asrEngineChoice(parsedConfig).engine;
const hubConfig = engineHubConfig(parsedConfig);
const hub = await EngineHub.create(hubConfig);
const sessions = new SessionManager({ database, nodeId: "bench-sip", capacity: CALLS + 10 });
const gateway = new SipGateway({
  database,
  sessions,
  nodeId: "bench-sip",
  realm: "parley",
  pipelineFactory: (host, options) => hub.createPipeline(host, options),
});
const rtpMin = 30000 + (Deno.pid % 50) * 200;
const uas = new SipUas({
  host: "127.0.0.1",
  port: 0,
  app: gateway,
  allowAnyone: true,
  rtpPortMin: rtpMin,
  rtpPortMax: rtpMin + 199,
  mediaTimeoutMs: 30_000,
  pacingSamples: 100_000,
});
await uas.listen();

// Keep each call's gap record (the arrays outlive the calls).
const gapRecords = new Set<number[]>();
const latenessRecords = new Set<number[]>();
let maxConcurrent = 0;
const loadSamples: number[] = [];
let lastLoadSample = 0;
const sampler = setInterval(() => {
  if (performance.now() - lastLoadSample >= 1000) {
    loadSamples.push(Deno.loadavg()[0]);
    lastLoadSample = performance.now();
  }
  const live = uas.calls;
  maxConcurrent = Math.max(maxConcurrent, live.length);
  for (const c of live) {
    if (c.rtp) {
      gapRecords.add(c.rtp.gaps);
      latenessRecords.add(c.rtp.lateness);
    }
  }
}, 100);

console.log(
  `sip_load: ${CALLS} concurrent calls (SIPp, PCMA pcap ${(pcm.length / 8000).toFixed(1)} s), ` +
    `${navigator.hardwareConcurrency} cores, load avg at start ${
      Deno.loadavg().map((x) => x.toFixed(1)).join(" ")
    }`,
);
/**
 * The main thread's CPU time and its time waiting for a CPU (Linux schedstat): on a shared machine the second
 * says how much of the pacing is the scheduler's, not this process's.
 */
function mainThreadSched(): { cpuMs: number; waitMs: number } | undefined {
  try {
    const [cpu, wait] = Deno.readTextFileSync(`/proc/self/task/${Deno.pid}/schedstat`).split(" ").map(Number);
    return { cpuMs: cpu / 1e6, waitMs: wait / 1e6 };
  } catch {
    return undefined;
  }
}
const sched0 = mainThreadSched();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const sipp = await new Deno.Command("sipp", {
  args: [
    `127.0.0.1:${uas.localPort}`,
    "-sf",
    scenario,
    "-s",
    "200",
    "-i",
    "127.0.0.1",
    "-mi",
    "127.0.0.1",
    "-m",
    String(CALLS),
    "-l",
    String(CALLS),
    "-r",
    String(CALLS),
    "-rp",
    "1000",
    "-nostdin",
    "-timeout",
    "120s",
    "-trace_err",
  ],
  cwd: tmp,
  stdout: "null",
  stderr: "piped",
}).output();
const wallS = (performance.now() - t0) / 1000;
// Let the last sessions finish their close.
const deadline = performance.now() + 10_000;
while (sessions.load > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 100));
const cpu = process.cpuUsage(cpu0);
const sched1 = mainThreadSched();
const mainThread = sched0 && sched1
  ? {
    cpu_s: Number(((sched1.cpuMs - sched0.cpuMs) / 1000).toFixed(2)),
    runqueue_wait_s: Number(((sched1.waitMs - sched0.waitMs) / 1000).toFixed(2)),
  }
  : undefined;
clearInterval(sampler);
const loadEnd = Deno.loadavg();

const rows = await database.query<{ reason: string | null; n: number }>(
  sql`select reason, count(*)::int as n from sessions where kind = 'sip' group by reason`,
);
const lat = (await database.query<{ latency_ms: number }>(
  sql`select latency_ms from transcript_segments where latency_ms is not null`,
)).map((r) => Number(r.latency_ms));
const texts = await database.query<{ text: string }>(
  sql`select string_agg(t.text, ' ' order by t.seq) as text from sessions s
      left join transcript_segments t on t.session_id = s.id where s.kind = 'sip' group by s.id`,
);
const gaps = [...gapRecords].flat();
// Each packet's lateness against its call's ideal 20 ms grid (RtpSession.lateness, skipped ticks counted),
// from the call's most punctual packet: the jitter-buffer depth a phone needs, where a gap p99 of 20 ms leaves
// no slack at all.
const lateness = [...latenessRecords].flatMap((l) => {
  const floor = Math.min(0, ...l);
  return l.map((x) => x - floor);
});
const byReason = Object.fromEntries(rows.map((r) => [r.reason ?? "open", Number(r.n)]));
const dropped = CALLS - (byReason.remote_hangup ?? 0);
const answered = Object.values(byReason).reduce((a, b) => a + b, 0);
const norm = (t: string) => t.toLowerCase().replace(/[^a-z' ]/g, " ").replace(/\s+/g, " ").trim();
// Per call: everything confirmed in it against the sentence played (a call with nothing confirmed scores 1).
const wers = texts.map((t) => wordErrorRate(SENTENCE, norm(t.text ?? "")));
const meanWer = wers.length ? wers.reduce((a, b) => a + b, 0) / wers.length : NaN;

const cores = (cpu.user + cpu.system) / 1e6 / wallS;
const loadMean = loadSamples.reduce((a, b) => a + b, 0) / Math.max(1, loadSamples.length);
const p99Gap = pct(gaps, 99);
const latP50 = pct(lat, 50);
const ms = (x: number) => Number.isFinite(x) ? `${Math.round(x)} ms` : "none";
const table = [
  `sip_load: ${CALLS} concurrent calls, ${
    (pcm.length / 8000).toFixed(1)
  } s of speech each (SIPp pcap, PCMA), ` +
  `ASR ${ASR} (${engine}), ${navigator.hardwareConcurrency} cores, load avg ${
    loadEnd[0].toFixed(1)
  } at the end`,
  "",
  "| calls | answered | max at once | dropped | CPU (cores) | confirmed p50 | confirmed p99 | RTP gap p50 | RTP gap p99 | RTP gap max | RTP lateness p99 | confirmed | WER per call |",
  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  `| ${CALLS} | ${answered} | ${maxConcurrent} | ${dropped} | ${cores.toFixed(2)} | ` +
  `${ms(latP50)} | ${ms(pct(lat, 99))} | ${pct(gaps, 50).toFixed(1)} ms | ` +
  `${p99Gap.toFixed(2)} ms | ${Math.max(...gaps).toFixed(1)} ms | ${pct(lateness, 99).toFixed(1)} ms | ` +
  `${lat.length} | ${meanWer.toFixed(2)} |`,
  "",
  `Goals (issue 22): no call dropped (${dropped === 0 ? "met" : "MISSED"}); ` +
  // The goal is stated in whole milliseconds, and a gap is 20 ms plus the difference of two sends' lateness:
  // any real clock puts half the gaps a little above 20.000 (docs/benchmarks.md, "Why not 20.00").
  `outbound RTP gap p99 ≤ 20 ms at whole-millisecond precision (${
    Math.round(p99Gap) <= 20 ? "met" : "MISSED"
  }: ${p99Gap.toFixed(2)} ms; ticks are 20 ms apart, so p99 ≈ 20 means no late packet in 100).`,
  `Load average during the run: mean ${loadMean.toFixed(1)}, max ${Math.max(...loadSamples).toFixed(1)}` +
  (mainThread
    ? `; main thread: ${mainThread.cpu_s} s on a CPU, ${mainThread.runqueue_wait_s} s runnable but waiting for one`
    : "") +
  `; media clock skipped ${uas.rtpWorker.skippedTicks} ticks after stalls.`,
];
console.log("\n" + table.join("\n") + "\n");
console.log(JSON.stringify(
  {
    calls: CALLS,
    asr: ASR,
    max_concurrent: maxConcurrent,
    sipp_exit: sipp.code,
    sessions_by_reason: byReason,
    dropped,
    wall_s: Number(wallS.toFixed(1)),
    cpu_cores: Number(cores.toFixed(2)),
    confirmed: lat.length,
    engine,
    texts: texts.map((t) => t.text),
    mean_wer: Number(meanWer.toFixed(3)),
    confirmed_latency_ms: { p50: pct(lat, 50), p99: pct(lat, 99) },
    rtp_gap_ms: {
      n: gaps.length,
      p50: Number(pct(gaps, 50).toFixed(2)),
      p99: Number(pct(gaps, 99).toFixed(2)),
      p999: Number(pct(gaps, 99.9).toFixed(2)),
      max: Number(Math.max(...gaps).toFixed(2)),
    },
    rtp_lateness_ms: { p50: Number(pct(lateness, 50).toFixed(2)), p99: Number(pct(lateness, 99).toFixed(2)) },
    load_avg_end: loadEnd.map((x) => Number(x.toFixed(1))),
    load_avg_during: { mean: Number(loadMean.toFixed(1)), max: Number(Math.max(...loadSamples).toFixed(1)) },
    main_thread: mainThread,
    clock_skipped_ticks: uas.rtpWorker.skippedTicks,
  },
));
if (sipp.code !== 0) console.log(new TextDecoder().decode(sipp.stderr).slice(-2000));

await sessions.close("origin_shutdown");
await uas.close();
await hub.close();
await database.close();
Deno.removeSync(tmp, { recursive: true });
Deno.exit(dropped === 0 && sipp.code === 0 ? 0 : 1);
