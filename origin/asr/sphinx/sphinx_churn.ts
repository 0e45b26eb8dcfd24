/**
 * Native-memory churn for the leak test and benchmarks, run in its own process so its RSS, threads and fds are
 * its own:
 *
 *   deno run -A origin/asr/sphinx/sphinx_churn.ts decoders 200   # open → decode → close, 200 times
 *   deno run -A origin/asr/sphinx/sphinx_churn.ts pool 500       # 500 utterances through a pool of 2
 *   deno run -A origin/asr/sphinx/sphinx_churn.ts leak 10        # control: decoders never closed
 *
 * Prints one JSON line per checkpoint: `{phase, cycles, rssKb, anonKb, threads, fds}`: `warm` after a tenth of
 * the cycles (half for `pool`, whose decoders give back their model-load scratch memory only after a while),
 * `end` after all. `anonKb` (RssAnon) is what a leak grows: the model files are memory-mapped, and their pages
 * come and go from VmRSS with the machine's page cache. `decoders` and `leak` build decoders with the small
 * pocketsphinx-testdata "turtle" LM (same acoustic model) so 200 model loads stay quick; `pool` uses the
 * configured (default en-us) model.
 */
import { SphinxDecoder } from "./sphinx_decoder.ts";
import { DEFAULT_SPHINX_CONFIG, type SphinxConfig, sphinxConfigFromEnv } from "./sphinx_detect.ts";
import { closeSphinxLibrary } from "./sphinx_ffi.ts";
import { SphinxPool } from "./sphinx_pool.ts";
import { librivoxUtterances, readWav16k, SPHINX_TESTDATA } from "./sphinx_testdata.ts";

export interface ChurnSample {
  phase: "start" | "warm" | "end";
  cycles: number;
  rssKb: number;
  anonKb: number;
  threads: number;
  fds: number;
}

export function processSample(phase: ChurnSample["phase"], cycles: number): ChurnSample {
  const status = Deno.readTextFileSync("/proc/self/status");
  const kb = (field: string) => Number(status.match(new RegExp(`${field}:\\s+(\\d+)`))?.[1] ?? NaN);
  const count = (dir: string) => [...Deno.readDirSync(dir)].length;
  return {
    phase,
    cycles,
    rssKb: kb("VmRSS"),
    anonKb: kb("RssAnon"),
    threads: count("/proc/self/task"),
    fds: count("/proc/self/fd"),
  };
}

export const SMALL_LM_CONFIG: SphinxConfig = {
  ...DEFAULT_SPHINX_CONFIG,
  lm: `${SPHINX_TESTDATA}/turtle.lm.bin`,
  dict: `${SPHINX_TESTDATA}/turtle.dic`,
};

if (import.meta.main) {
  const mode = Deno.args[0] ?? "decoders";
  const n = Number(Deno.args[1] ?? 200);
  const speech = readWav16k(librivoxUtterances()[1].path).subarray(3200, 3200 + 8000); // 0.5 s of speech
  const emit = (s: ChurnSample) => console.log(JSON.stringify(s));
  const warmAt = Math.max(1, Math.floor(mode === "pool" ? n / 2 : n / 10));
  const decodeOn = (d: SphinxDecoder) => {
    d.start();
    for (let i = 0; i < speech.length; i += 1600) d.process(speech.subarray(i, i + 1600));
    d.partial();
    d.finish();
  };
  emit(processSample("start", 0));
  const kept: SphinxDecoder[] = [];
  if (mode === "pool") {
    const pool = new SphinxPool({ config: sphinxConfigFromEnv(), maxDecoders: 2 });
    for (let i = 1; i <= n; i++) {
      // two overlapping leases, like two sessions
      const [a, b] = await Promise.all([pool.acquire(), pool.acquire()]);
      decodeOn(i % 2 ? a : b);
      pool.release(a);
      pool.release(b);
      if (i === warmAt) emit(processSample("warm", i));
    }
    pool.close();
  } else {
    for (let i = 1; i <= n; i++) {
      const d = SphinxDecoder.open(SMALL_LM_CONFIG);
      decodeOn(d);
      if (mode === "leak") kept.push(d);
      else d.close();
      if (i === warmAt) emit(processSample("warm", i));
    }
  }
  emit(processSample("end", n));
  for (const d of kept) d.close();
  closeSphinxLibrary();
}
