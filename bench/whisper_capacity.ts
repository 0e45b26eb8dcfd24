/**
 * What serving a recognizer costs per session, for the engines Parley runs: the bundled `ctc` and
 * `moonshine`, PocketSphinx (`sphinx`, when installed) and Whisper base.en / small.en. Whisper weights cannot
 * be downloaded here, so the Whisper rows use models of the real shapes with RANDOM weights
 * (models/tiny/build_random_whisper.py, built on demand into $PARLEY_BENCH_DIR, default /tmp/parley-bench;
 * never committed): COST ONLY, they recognise nothing. Their generation is capped at the token count real
 * speech of that length gives (~3.2 tokens/s, about 2.5 words/s) because random weights never end a
 * transcript.
 *
 * One thread (intraOpNumThreads 1, like a speech worker), in this process. Costs are CPU time of the process
 * (user + system, `process.cpuUsage`) per decode, so a loaded machine slows the wall clock but not the figures
 * much; wall times are printed too, with the load average.
 *
 * Capacity model, the current partial policy (origin/pipeline/recognizer.ts): an utterance of U s gets a
 * partial when it has 250 ms of speech and then every 400 ms of new audio, then one final decode of the whole
 * segment; re-decoding engines (ctc, moonshine, whisper) decode the growing segment each time, the streaming engine
 * (sphinx) processes each sample once. Sessions speak ~50 % of the time in 5 s utterances. Sessions per origin =
 * 80 % of the cores' CPU / CPU per session-second; "confirmed only" is the same when every partial is shed.
 *
 *   deno run -A bench/whisper_capacity.ts [--cores 2] [--sizes base.en,small.en]
 *     [--engines ctc,moonshine,sphinx,whisper] (also moonshine_int8: the int8 graph without folding, for comparison)
 *                                         [--repeats 2] [--json]
 */
import process from "node:process";
import { readWav } from "../origin/pipeline/wav.ts";
import { int16ToFloat } from "../lib/audio/resampler.ts";
import type { AsrEngine } from "../origin/asr/engine.ts";

const args = Deno.args;
const opt = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const CORES = Number(opt("--cores", String(navigator.hardwareConcurrency)));
const SIZES = opt("--sizes", "base.en,small.en").split(",");
const WORK = Deno.env.get("PARLEY_BENCH_DIR") ?? "/tmp/parley-bench";
const UTTERANCE_S = 5;
const SPEECH_SHARE = 0.5;
const FIRST_PARTIAL_S = 0.25;
const PARTIAL_EVERY_S = 0.4;
const TOKENS_PER_S = 3.2;
const REPEATS = Number(opt("--repeats", "2"));
const ENGINES = opt("--engines", "ctc,moonshine,sphinx,whisper").split(",");

/** 5 s of espeak speech (the bundled eval WAVs, concatenated). */
function speech(seconds: number): Float32Array {
  const dir = new URL("../models/eval/", import.meta.url).pathname;
  const out = new Float32Array(seconds * 16000);
  let o = 0;
  for (let i = 0; o < out.length; i++) {
    const x = int16ToFloat(readWav(`${dir}heldout_${String(i).padStart(3, "0")}.wav`).samples);
    out.set(x.subarray(0, Math.min(x.length, out.length - o)), o);
    o += x.length;
  }
  return out;
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Least CPU and wall ms of `f` over REPEATS runs (the least disturbed by neighbours), after one warm-up. */
async function measure(f: () => Promise<unknown>, warm = true): Promise<{ cpu: number; wall: number }> {
  if (warm) await f();
  const cpu: number[] = [], wall: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const c0 = cpuMs(), t0 = performance.now();
    await f();
    cpu.push(cpuMs() - c0);
    wall.push(performance.now() - t0);
  }
  return { cpu: Math.min(...cpu), wall: Math.min(...wall) };
}

/** Audio lengths (s) the policy decodes for one utterance: partials, then the final decode. */
function decodePoints(u: number): { partials: number[]; final: number } {
  const partials: number[] = [];
  for (let t = FIRST_PARTIAL_S; t < u; t += PARTIAL_EVERY_S) partials.push(t);
  // the segment carries 300 ms of pre-roll and up to 160 ms of tail silence
  return { partials: partials.map((t) => t + 0.3), final: u + 0.46 };
}

interface Row {
  engine: string;
  note: string;
  rtf5s: number;
  wall5sMs: number;
  cpuPerSessionS: number;
  cpuPerSessionSConfirmedOnly: number;
  sessions: number;
  sessionsConfirmedOnly: number;
}

function capacity(cpuPerSessionS: number): number {
  return Math.floor((0.8 * CORES * 1000) / cpuPerSessionS);
}

/** A re-decoding engine: cost(len) measured at each length the policy asks for. */
async function redecodeRow(
  engine: string,
  note: string,
  decode: (pcm: Float32Array, final: boolean) => Promise<unknown>,
): Promise<Row> {
  const audio = speech(8);
  const { partials, final } = decodePoints(UTTERANCE_S);
  const run = (s: number, fin: boolean, warm = false) =>
    measure(() => decode(audio.subarray(0, Math.round(s * 16000)), fin), warm);
  // cost is affine in the audio length (fixed part + per second): measured at the shortest and the longest
  // partial, interpolated for the ones between (the machine is too loaded to time every length)
  const p0 = await run(partials[0], false, true), p1 = await run(partials[partials.length - 1], false);
  const slope = (p1.cpu - p0.cpu) / (partials[partials.length - 1] - partials[0]);
  let partialCpu = 0;
  for (const s of partials) partialCpu += Math.max(0, p0.cpu + slope * (s - partials[0]));
  const fin = await run(final, true, true);
  const five = await run(UTTERANCE_S, true);
  const perUtterance = partialCpu + fin.cpu;
  // one utterance per UTTERANCE_S / SPEECH_SHARE seconds of session
  const perSessionS = perUtterance / (UTTERANCE_S / SPEECH_SHARE);
  const confirmedOnly = fin.cpu / (UTTERANCE_S / SPEECH_SHARE);
  return {
    engine,
    note,
    rtf5s: five.cpu / (UTTERANCE_S * 1000),
    wall5sMs: five.wall,
    cpuPerSessionS: perSessionS,
    cpuPerSessionSConfirmedOnly: confirmedOnly,
    sessions: capacity(perSessionS),
    sessionsConfirmedOnly: capacity(confirmedOnly),
  };
}

async function ensureModel(size: string): Promise<string> {
  const dir = `${WORK}/random-whisper-${size}`;
  try {
    Deno.statSync(`${dir}/onnx/decoder_model_merged.onnx`);
    Deno.statSync(`${dir}/tokenizer.json`);
    return dir;
  } catch { /* build it */ }
  await Deno.mkdir(WORK, { recursive: true });
  console.error(`building ${dir} (random weights, a few minutes)…`);
  const script = new URL("../models/tiny/build_random_whisper.py", import.meta.url).pathname;
  const r = await new Deno.Command("/usr/bin/python3", { args: [script, size, dir] }).output();
  if (!r.success) {
    throw new Error(`build_random_whisper.py ${size} failed (needs python3-torch, python3-onnx)`);
  }
  return dir;
}

async function whisperRow(size: string): Promise<Row> {
  const dir = await ensureModel(size);
  const { WhisperEngine } = await import("../origin/asr/whisper_engine.ts");
  const e: AsrEngine = await WhisperEngine.load({
    engine: "whisper",
    model: dir,
    modelsDir: WORK,
    allowRemoteModels: false,
    intraOpNumThreads: 1,
  });
  try {
    // tokens realistic for the audio length: random weights never emit <|endoftext|>
    const cfg = (e as unknown as { config: { maxNewTokens?: number } }).config;
    return await redecodeRow(
      `whisper ${size}`,
      "cost only (random weights)",
      (pcm) => {
        cfg.maxNewTokens = Math.max(1, Math.round((pcm.length / 16000) * TOKENS_PER_S));
        return e.transcribe(pcm);
      },
    );
  } finally {
    await e.dispose();
  }
}

async function ctcRow(): Promise<Row> {
  const { loadCtcRecognizer } = await import("../origin/asr/ctc_decoder.ts");
  const { PARTIAL_SEARCH } = await import("../origin/asr/ctc_engine.ts");
  const rec = await loadCtcRecognizer(new URL("../models/parley-asr-en", import.meta.url).pathname);
  try {
    return await redecodeRow(
      "ctc parley-asr-en",
      "bundled, espeak English",
      (pcm, fin) => rec.transcribe(pcm, fin ? undefined : PARTIAL_SEARCH),
    );
  } finally {
    await rec.dispose();
  }
}

/** `int8`: the quantized graph as shipped, its weights dequantized on every run (the state before folding). */
async function moonshineRow(int8 = false): Promise<Row> {
  const { MoonshineModel } = await import("../origin/asr/moonshine/moonshine_model.ts");
  const dir = new URL("../models/moonshine-tiny-en", import.meta.url).pathname;
  const m = await MoonshineModel.load(dir, { foldWeights: !int8 });
  try {
    return await redecodeRow(
      int8 ? "moonshine tiny, int8 weights per run" : "moonshine tiny",
      "bundled, human English",
      (pcm) => m.decode(pcm),
    );
  } finally {
    await m.dispose();
  }
}

/** Streaming: every sample is processed once; partials read the running hypothesis (no decode). */
async function sphinxRow(): Promise<Row | null> {
  try {
    const { SphinxEngine } = await import("../origin/asr/sphinx/sphinx_engine.ts");
    const e = await SphinxEngine.load({ maxDecoders: 1 });
    try {
      const audio = speech(UTTERANCE_S);
      const five = await measure(() => e.transcribe(audio));
      const { final } = decodePoints(UTTERANCE_S);
      const perUtterance = five.cpu * (final / UTTERANCE_S);
      const perSessionS = perUtterance / (UTTERANCE_S / SPEECH_SHARE);
      return {
        engine: "sphinx en-us",
        note: "streaming, human English",
        rtf5s: five.cpu / (UTTERANCE_S * 1000),
        wall5sMs: five.wall,
        cpuPerSessionS: perSessionS,
        cpuPerSessionSConfirmedOnly: perSessionS,
        sessions: capacity(perSessionS),
        sessionsConfirmedOnly: capacity(perSessionS),
      };
    } finally {
      await e.dispose();
    }
  } catch (err) {
    console.error(`sphinx left out: ${(err as Error).message}`);
    return null;
  }
}

if (import.meta.main) {
  const load0 = Deno.loadavg();
  const rows: Row[] = [];
  if (ENGINES.includes("ctc")) rows.push(await ctcRow());
  if (ENGINES.includes("moonshine")) rows.push(await moonshineRow());
  if (ENGINES.includes("moonshine_int8")) rows.push(await moonshineRow(true));
  const s = ENGINES.includes("sphinx") ? await sphinxRow() : null;
  if (s) rows.push(s);
  if (ENGINES.includes("whisper")) { for (const size of SIZES) rows.push(await whisperRow(size)); }
  const load1 = Deno.loadavg();
  if (args.includes("--json")) {
    console.log(JSON.stringify({ cores: CORES, loadavg: { start: load0, end: load1 }, rows }));
  } else {
    const f = (x: number[]) => x.map((v) => v.toFixed(1)).join(" ");
    console.log(
      `${CORES} cores; load average ${f(load0)} at start, ${f(load1)} at end; one thread per decode; ` +
        `${UTTERANCE_S} s utterances, ${SPEECH_SHARE * 100} % speech\n`,
    );
    console.log(
      "| engine | what | CPU RTF (5 s) | wall ms (5 s) | CPU ms per session·s | sessions @ 80 % | confirmed only |",
    );
    console.log("| --- | --- | --- | --- | --- | --- | --- |");
    for (const r of rows) {
      console.log(
        `| ${r.engine} | ${r.note} | ${r.rtf5s.toFixed(3)} | ${r.wall5sMs.toFixed(0)} | ${
          r.cpuPerSessionS.toFixed(1)
        } | ${r.sessions} | ${r.sessionsConfirmedOnly} |`,
      );
    }
  }
  Deno.exit(0);
}
