/**
 * Human speech recognition, side by side on the same Debian-shipped recordings (bench/human_corpus.ts):
 *
 *  - `cli`        the PocketSphinx CLI, `pocketsphinx_continuous -infile` (one process per file, its own VAD)
 *  - `ffi_fresh`  our FFI streaming decoder, a new decoder per file (same start state as the CLI)
 *  - `ffi_pooled` our FFI streaming decoder, one decoder reused for all files in order (as a pooled decoder
 *                 serves a live stream: the cepstral mean carries over between utterances)
 *
 * Same model, LM and dictionary for all (the Debian en-us defaults or SPHINX_*); audio fed to the FFI decoder in
 * 100 ms pieces with a partial read after each. Prints WER per group and overall (origin/asr/error_rate.ts), the
 * FFI decoder's real-time factor and partial spacing.
 *
 *  - `live`       each recording played into a live WebRTC session (Opus, real time) through edge + origin
 *                 processes with ASR_ENGINE=sphinx (bench/human_asr_live.ts): what a user of Parley gets
 *
 *  - `pipeline`   the same session speech pipeline in process (VAD, segmenter, streaming sphinx) without WebRTC
 *                 and Opus, faster than real time (bench/human_asr_pipeline.ts): not in the default set
 *
 *  - `moonshine`  the bundled Moonshine engine (origin/asr/moonshine) on each whole file, in this process
 *  - `live_<engine>`, `pipeline_<engine>`: `live` / `pipeline` with ASR_ENGINE=<engine> (e.g. live_moonshine,
 *                 the `auto` default), so engines compare side by side in one run
 *
 *  - `ctc`        the bundled CTC recognizer (models/parley-asr-en, or --model <dir>), beam + LM; not in the default
 *                 set (it is trained on synthetic speech only): `--systems ctc`
 *
 *   deno task bench human_asr   or   deno run -A --unstable-worker-options bench/human_asr.ts [--json] [--no-live]
 *     [--systems cli,ffi_fresh,ffi_pooled,pipeline,live,ctc] [--model <parley-asr-en dir>] [--live-quiet-ms 20000]
 */
import { editDistance } from "../origin/asr/error_rate.ts";
import { SphinxDecoder } from "../origin/asr/sphinx/sphinx_decoder.ts";
import { type SphinxConfig, sphinxConfigOrExit } from "../origin/asr/sphinx/sphinx_detect.ts";
import { readWav16k } from "../origin/asr/sphinx/sphinx_testdata.ts";
import { durationS, humanCorpus, type HumanRecording, wav16k } from "./human_corpus.ts";
import { loadCtcRecognizer } from "../origin/asr/ctc_decoder.ts";
import { int16ToFloat } from "../lib/audio/resampler.ts";

export interface SystemResult {
  text: string;
  /** Wall time spent recognizing (excludes model load where the system can separate it). */
  decodeMs: number;
  /** CPU time spent recognizing (the machine may be shared: this is the figure that does not depend on load). */
  cpuMs: number;
  /** Audio ms between successive partial-text changes, when the system streams. */
  partialGapsMs?: number[];
  /** Compute ms per fed piece (process + partial), when the system streams. */
  pieceMs?: number[];
}

export interface AsrSystem {
  name: string;
  what: string;
  recognize(rec: HumanRecording, wav16kPath: string): Promise<SystemResult>;
  close(): Promise<void>;
}

const norm = (s: string) => s.toLowerCase().replace(/[^a-z' ]/g, " ").replace(/\s+/g, " ").trim();
const words = (s: string) => (norm(s) ? norm(s).split(" ") : []);

export function cliSystem(config: SphinxConfig): AsrSystem {
  return {
    name: "cli",
    what: "pocketsphinx_continuous -infile (Debian package pocketsphinx)",
    async recognize(_rec, path) {
      const t0 = performance.now();
      const args = ["-infile", path, "-hmm", config.modelDir, "-dict", config.dict, "-logfn", "/dev/null"];
      args.push(...(config.jsgf ? ["-jsgf", config.jsgf] : ["-lm", config.lm]));
      const out = await new Deno.Command("/usr/bin/time", {
        args: ["-f", "cpu %U %S", "pocketsphinx_continuous", ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (!out.success) throw new Error(`pocketsphinx_continuous failed on ${path} (exit ${out.code})`);
      const lines = new TextDecoder().decode(out.stdout).split("\n").map((l) => l.trim());
      const cpu = new TextDecoder().decode(out.stderr).match(/cpu ([\d.]+) ([\d.]+)/);
      const cpuMs = cpu ? (Number(cpu[1]) + Number(cpu[2])) * 1000 : NaN;
      return { text: lines.filter(Boolean).join(" "), decodeMs: performance.now() - t0, cpuMs };
    },
    close: () => Promise.resolve(),
  };
}

/**
 * The bundled CTC recognizer (models/parley-asr-en or --model <dir>), beam + lexicon + LM, whole file at once. It
 * is trained on synthetic speech only: its figure on human recordings is for information.
 */
export function ctcSystem(modelDir: string): AsrSystem {
  let rec: Awaited<ReturnType<typeof loadCtcRecognizer>> | null = null;
  return {
    name: "ctc",
    what: `bundled CTC recognizer (${modelDir}), beam + lexicon + LM`,
    async recognize(_rec, path) {
      rec ??= await loadCtcRecognizer(modelDir, { intraOpNumThreads: 1 });
      const t0 = performance.now();
      const c0 = cpuNowMs();
      const r = await rec.transcribe(int16ToFloat(readWav16k(path)));
      return { text: r.hypotheses[0]?.text ?? "", decodeMs: performance.now() - t0, cpuMs: cpuNowMs() - c0 };
    },
    async close() {
      await rec?.dispose();
      rec = null;
    },
  };
}

/** This process's user + system CPU time, ms (/proc/self/stat, 100 ticks per second). */
function cpuNowMs(): number {
  const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

function streamOn(d: SphinxDecoder, pcm: Int16Array): SystemResult {
  const piece = 1600;
  const gaps: number[] = [];
  const pieceMs: number[] = [];
  let last = "", lastAt = 0;
  const t0 = performance.now();
  const c0 = cpuNowMs();
  d.start();
  for (let i = 0; i < pcm.length; i += piece) {
    const p0 = performance.now();
    d.process(pcm.subarray(i, i + piece));
    const text = d.partial().text;
    pieceMs.push(performance.now() - p0);
    const at = (Math.min(pcm.length, i + piece) * 1000) / 16000;
    if (text && text !== last) {
      if (last) gaps.push(at - lastAt);
      last = text;
      lastAt = at;
    }
  }
  const r = d.finish();
  return {
    text: r.text,
    decodeMs: performance.now() - t0,
    cpuMs: cpuNowMs() - c0,
    partialGapsMs: gaps,
    pieceMs,
  };
}

/** The Moonshine engine on the whole file (no VAD, no streaming): what the model itself gets right. */
export async function moonshineSystem(): Promise<AsrSystem> {
  const { loadBundledMoonshine } = await import("../origin/asr/moonshine/moonshine_engine.ts");
  const engine = await loadBundledMoonshine();
  return {
    name: "moonshine",
    what: "Moonshine tiny (models/moonshine-tiny-en) on the whole file, one onnxruntime thread",
    async recognize(_rec, path) {
      const t0 = performance.now(), c0 = cpuNowMs();
      const r = await engine.transcribe(int16ToFloat(readWav16k(path)));
      return {
        text: r.alternatives[0]?.text ?? "",
        decodeMs: performance.now() - t0,
        cpuMs: cpuNowMs() - c0,
      };
    },
    close: () => engine.dispose(),
  };
}

export function ffiFreshSystem(config: SphinxConfig): AsrSystem {
  return {
    name: "ffi_fresh",
    what: "Parley FFI streaming decoder, new decoder per file",
    recognize(_rec, path) {
      const d = SphinxDecoder.open(config);
      try {
        return Promise.resolve(streamOn(d, readWav16k(path)));
      } finally {
        d.close();
      }
    },
    close: () => Promise.resolve(),
  };
}

export function ffiPooledSystem(config: SphinxConfig): AsrSystem {
  let d: SphinxDecoder | null = null;
  return {
    name: "ffi_pooled",
    what: "Parley FFI streaming decoder, one decoder reused across files",
    recognize(_rec, path) {
      d ??= SphinxDecoder.open(config);
      return Promise.resolve(streamOn(d, readWav16k(path)));
    },
    close() {
      d?.close();
      return Promise.resolve();
    },
  };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const quantile = (xs: number[], q: number) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

export async function runHumanAsr(systems: AsrSystem[]): Promise<Record<string, unknown>> {
  const corpus = humanCorpus();
  const cache = await Deno.makeTempDir({ prefix: "parley-human-asr-" });
  const rows: Array<{ rec: HumanRecording; seconds: number; results: Record<string, SystemResult> }> = [];
  try {
    for (const rec of corpus) {
      const path = await wav16k(rec, cache);
      const seconds = await durationS(path);
      const results: Record<string, SystemResult> = {};
      for (const s of systems) results[s.name] = await s.recognize(rec, path);
      rows.push({ rec, seconds, results });
      // progress on stderr: a run cut short (a timeout on a loaded machine) still shows what it measured
      console.error(`${rec.id}: ${systems.map((s) => `${s.name}: ${results[s.name].text}`).join(" | ")}`);
    }
  } finally {
    for (const s of systems) await s.close();
    await Deno.remove(cache, { recursive: true }).catch(() => {});
  }
  const groups = ["librivox", "cards", "alsa", "all"] as const;
  const wer: Record<string, Record<string, number>> = {};
  for (const s of systems) {
    wer[s.name] = {};
    for (const g of groups) {
      let e = 0, n = 0;
      for (const r of rows.filter((x) => g === "all" || x.rec.group === g)) {
        const ref = words(r.rec.ref);
        e += editDistance(ref, words(r.results[s.name].text));
        n += ref.length;
      }
      wer[s.name][g] = e / Math.max(1, n);
    }
  }
  const audioS = rows.reduce((a, r) => a + r.seconds, 0);
  const timing: Record<string, unknown> = {};
  for (const s of systems) {
    const decodeS = rows.reduce((a, r) => a + r.results[s.name].decodeMs, 0) / 1000;
    const cpuS = rows.reduce((a, r) => a + r.results[s.name].cpuMs, 0) / 1000;
    const gaps = rows.flatMap((r) => r.results[s.name].partialGapsMs ?? []);
    const pieces = rows.flatMap((r) => r.results[s.name].pieceMs ?? []);
    timing[s.name] = {
      rtf: decodeS / audioS,
      cpuRtf: cpuS / audioS,
      partialGapMsP50: quantile(gaps, 0.5),
      partialGapMsP95: quantile(gaps, 0.95),
      pieceComputeMsP50: quantile(pieces, 0.5),
      pieceComputeMsP95: quantile(pieces, 0.95),
    };
  }
  return { audioS, wer, timing, rows };
}

if (import.meta.main) {
  const config = sphinxConfigOrExit();
  // --systems cli,live picks columns (default: all four)
  const si = Deno.args.indexOf("--systems");
  const wanted = si >= 0 ? Deno.args[si + 1].split(",") : ["cli", "ffi_fresh", "ffi_pooled", "live"];
  const mi = Deno.args.indexOf("--model");
  const ctcDir = mi >= 0 ? Deno.args[mi + 1] : new URL("../models/parley-asr-en", import.meta.url).pathname;
  const systems = [cliSystem(config), ffiFreshSystem(config), ffiPooledSystem(config), ctcSystem(ctcDir)]
    .filter((s) => wanted.includes(s.name));
  const live = wanted.some((w) => w.startsWith("live")) && !Deno.args.includes("--no-live");
  if (wanted.includes("moonshine")) systems.push(await moonshineSystem());
  for (const w of wanted) {
    const m = w.match(/^(pipeline|live)(?:_(\w+))?$/);
    if (!m || (m[1] === "live" && !live)) continue;
    const env: Record<string, string> = m[2] ? { ASR_ENGINE: m[2] } : {};
    systems.push(
      m[1] === "pipeline"
        ? await (await import("./human_asr_pipeline.ts")).pipelineSystem(env)
        : await (await import("./human_asr_live.ts")).liveSessionSystem(env),
    );
  }
  const load0 = Deno.loadavg()[0];
  const report = await runHumanAsr(systems) as {
    audioS: number;
    wer: Record<string, Record<string, number>>;
    timing: Record<string, Record<string, number>>;
    rows: Array<{ rec: HumanRecording; results: Record<string, SystemResult> }>;
  };
  const done = async () => {
    // a process that had a connected wrtc peer must end with an explicit exit (origin/session/wrtc.ts)
    if (live) await (await import("../origin/session/wrtc.ts")).exitCleanly(() => Promise.resolve());
    Deno.exit(0);
  };
  if (Deno.args.includes("--json")) {
    console.log(JSON.stringify(report, null, 2));
    await done();
  }
  const names = systems.map((s) => s.name);
  // the machine may be shared: the 1-minute load average at the start and end of the run
  console.log(`load average ${load0.toFixed(1)} at start, ${Deno.loadavg()[0].toFixed(1)} at end`);
  console.log(
    `Human recordings: ${report.rows.length} files, ${report.audioS.toFixed(1)} s (bench/human_corpus.ts)`,
  );
  for (const s of systems) console.log(`  ${s.name}: ${s.what}`);
  console.log(`\n| WER | ${names.join(" | ")} |\n| --- |${names.map(() => " --- |").join("")}`);
  for (const g of ["librivox", "cards", "alsa", "all"]) {
    console.log(`| ${g} | ${names.map((n) => pct(report.wer[n][g])).join(" | ")} |`);
  }
  const f = (x: number, d = 2) => Number.isFinite(x) ? x.toFixed(d) : "-";
  console.log(`\n| timing | ${names.join(" | ")} |\n| --- |${names.map(() => " --- |").join("")}`);
  const row = (label: string, k: string, d: number) =>
    console.log(`| ${label} | ${names.map((n) => f(report.timing[n][k], d)).join(" | ")} |`);
  row("RTF, wall (cli: whole process incl. model load)", "rtf", 2);
  row("RTF, CPU (cli: whole process incl. model load)", "cpuRtf", 2);
  row("partial change gap p50, audio ms", "partialGapMsP50", 0);
  row("partial change gap p95, audio ms", "partialGapMsP95", 0);
  row("compute per 100 ms piece p50, ms", "pieceComputeMsP50", 1);
  row("compute per 100 ms piece p95, ms", "pieceComputeMsP95", 1);
  console.log(`\n| file | ref | ${names.join(" | ")} |\n| --- | --- |${names.map(() => " --- |").join("")}`);
  for (const r of report.rows) {
    console.log(`| ${r.rec.id} | ${r.rec.ref} | ${names.map((n) => r.results[n].text).join(" | ")} |`);
  }
  await done();
}
