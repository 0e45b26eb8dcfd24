/**
 * Does RNNoise (origin/audio/rnnoise.ts) help recognition in noise, and what does it cost per session?
 *
 * Speech: the espeak-ng evaluation WAVs of the bundled model (models/eval, first N) for `ctc`, and the human
 * recordings of bench/human_corpus.ts (Debian pocketsphinx-testdata + alsa-utils) for `sphinx` (the engine
 * class directly) and `moonshine` (which also gets the espeak set). Noise: white / pink / brown noise made by
 * `sox -R` (repeatable), one colour per utterance in turn, added at 10 dB and 5 dB SNR over the speech's
 * active level (20 ms frames within 30 dB of the loudest). Suppression runs where the pipeline runs it: on
 * the 48 kHz signal in 10 ms frames (16 kHz → 48 kHz → RNNoise → 16 kHz here). Nothing is tuned on these
 * transcripts: the table only decides the default.
 *
 *   deno run -A bench/noise_suppression.ts [--espeak N] [--human librivox,cards,alsa] [--clean-ns] [--json]
 *
 * `--clean-ns` adds RNNoise on clean speech (what it costs when there is nothing to remove).
 *
 * CPU per session: RNNoise time per 10 ms frame in this isolate (WASM, one thread) as % of one core.
 */
import { humanCorpus, wav16k } from "./human_corpus.ts";
import { readWav } from "../origin/pipeline/wav.ts";
import { int16ToFloat, resampleAll } from "../lib/audio/resampler.ts";
import { NoiseSuppressor, RNNOISE_FRAME } from "../origin/audio/rnnoise.ts";
import { loadCtcRecognizer } from "../origin/asr/ctc_decoder.ts";
import { editDistance } from "../origin/asr/error_rate.ts";

interface Utterance {
  id: string;
  set: "espeak" | "human";
  ref: string;
  pcm: Float32Array; // 16 kHz
}

const args = Deno.args;
const nEspeak = Number(args[args.indexOf("--espeak") + 1]) || 40;
const humanGroups = args.includes("--human") ? args[args.indexOf("--human") + 1].split(",") : null;
const SNRS = [10, 5] as const;
export const COLOURS = ["whitenoise", "pinknoise", "brownnoise"] as const;

function norm(s: string): string[] {
  return s.toLowerCase().replace(/[^a-z' ]+/g, " ").split(/\s+/).filter(Boolean);
}

/** Active speech level (RMS of the 20 ms frames within 30 dB of the loudest). */
export function activeRms(x: Float32Array): number {
  const F = 320;
  const e: number[] = [];
  for (let i = 0; i + F <= x.length; i += F) {
    let s = 0;
    for (let k = 0; k < F; k++) s += x[i + k] * x[i + k];
    e.push(s / F);
  }
  const max = Math.max(...e);
  const active = e.filter((v) => v > max / 1000);
  return Math.sqrt(active.reduce((a, b) => a + b, 0) / Math.max(1, active.length));
}

export async function soxNoise(colour: string, samples: number, dir: string): Promise<Float32Array> {
  const path = `${dir}/${colour}_${samples}.wav`;
  const out = await new Deno.Command("sox", {
    args: ["-R", "-n", "-r", "16000", "-b", "16", "-c", "1", path, "synth", `${samples / 16000}`, colour],
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`sox: ${new TextDecoder().decode(out.stderr)}`);
  const w = readWav(path);
  const x = int16ToFloat(w.samples);
  return x.length >= samples ? x.subarray(0, samples) : (() => {
    const y = new Float32Array(samples);
    y.set(x);
    return y;
  })();
}

export function mix(speech: Float32Array, noise: Float32Array, snrDb: number): Float32Array {
  const g = activeRms(speech) / (activeRms(noise) * Math.pow(10, snrDb / 20));
  const out = new Float32Array(speech.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.max(-1, Math.min(1, speech[i] + g * noise[i]));
  return out;
}

/** RNNoise the way the pipeline runs it: 48 kHz, 10 ms frames, one state per stream. */
export async function denoise(
  pcm16k: Float32Array,
  timing: { ms: number; frames: number },
  blend = 0,
): Promise<Float32Array> {
  const x48 = resampleAll(pcm16k, 16000, 48000);
  const ns = await NoiseSuppressor.create();
  const y48 = new Float32Array(x48.length);
  try {
    const t0 = performance.now();
    for (let i = 0; i + RNNOISE_FRAME <= x48.length; i += RNNOISE_FRAME) {
      const f = ns.process(x48.subarray(i, i + RNNOISE_FRAME));
      // blend > 0 adds back that share of what RNNoise removed (a gentler suppression)
      for (let k = 0; k < RNNOISE_FRAME; k++) y48[i + k] = f[k] + blend * (x48[i + k] - f[k]);
      timing.frames++;
    }
    timing.ms += performance.now() - t0;
  } finally {
    ns.close();
  }
  return resampleAll(y48, 48000, 16000);
}

type Recognize = (pcm: Float32Array) => Promise<string>;

async function engines(): Promise<
  { name: string; sets: Utterance["set"][]; run: Recognize; close(): Promise<void> }[]
> {
  const out = [];
  const ctc = await loadCtcRecognizer(new URL("../models/parley-asr-en", import.meta.url).pathname);
  out.push({
    name: "ctc",
    // on human speech the bundled model is near 100 % WER even clean: noise figures there would mean nothing
    sets: ["espeak"] as Utterance["set"][],
    run: async (pcm: Float32Array) => (await ctc.transcribe(pcm)).hypotheses[0]?.text ?? "",
    close: () => ctc.dispose(),
  });
  try {
    const { SphinxEngine } = await import("../origin/asr/sphinx/sphinx_engine.ts");
    const sphinx = await SphinxEngine.load({ maxDecoders: 1 });
    out.push({
      name: "sphinx",
      sets: ["human"] as Utterance["set"][],
      run: async (pcm: Float32Array) => (await sphinx.transcribe(pcm)).alternatives[0]?.text ?? "",
      close: () => sphinx.dispose(),
    });
  } catch (e) {
    console.error(`sphinx left out: ${(e as Error).message}`);
  }
  const { loadBundledMoonshine } = await import("../origin/asr/moonshine/moonshine_engine.ts");
  const moonshine = await loadBundledMoonshine();
  out.push({
    name: "moonshine",
    sets: ["human", "espeak"] as Utterance["set"][],
    run: async (pcm: Float32Array) => (await moonshine.transcribe(pcm)).alternatives[0]?.text ?? "",
    close: () => moonshine.dispose(),
  });
  return out;
}

async function corpus(cache: string): Promise<Utterance[]> {
  const utts: Utterance[] = [];
  const evalDir = new URL("../models/eval/", import.meta.url).pathname;
  const rows = Deno.readTextFileSync(`${evalDir}manifest.tsv`).trim().split("\n").slice(1, 1 + nEspeak);
  for (const row of rows) {
    const [file, , text] = row.split("\t");
    utts.push({
      id: `espeak/${file}`,
      set: "espeak",
      ref: text,
      pcm: int16ToFloat(readWav(`${evalDir}${file}`).samples),
    });
  }
  try {
    for (const rec of humanCorpus().filter((r) => !humanGroups || humanGroups.includes(r.group))) {
      const w = readWav(await wav16k(rec, cache));
      utts.push({ id: rec.id, set: "human", ref: rec.ref, pcm: int16ToFloat(w.samples) });
    }
  } catch (e) {
    console.error(`human recordings left out: ${(e as Error).message}`);
  }
  return utts;
}

if (import.meta.main) {
  const cache = await Deno.makeTempDir({ prefix: "parley-ns-" });
  const load = Deno.loadavg();
  const utts = await corpus(cache);
  const conds: Array<{ snr: number | null; ns: boolean }> = [
    { snr: null, ns: false },
    ...(args.includes("--clean-ns") ? [{ snr: null, ns: true }] : []),
    ...SNRS.flatMap((snr) => [{ snr, ns: false }, { snr, ns: true }]),
  ];
  // noisy (and denoised) audio once per utterance and condition, shared by the engines
  const timing = { ms: 0, frames: 0 };
  const audio = new Map<string, Float32Array>();
  for (const [i, u] of utts.entries()) {
    for (const c of conds) {
      let x = u.pcm;
      if (c.snr !== null) x = mix(x, await soxNoise(COLOURS[i % 3], x.length, cache), c.snr);
      if (c.ns) x = await denoise(x, timing);
      audio.set(`${u.id}|${c.snr}|${c.ns}`, x);
    }
  }
  const rows: Array<
    { engine: string; set: string; snr: number | null; ns: boolean; wer: number; words: number }
  > = [];
  for (const e of await engines()) {
    try {
      for (const set of e.sets) {
        const us = utts.filter((u) => u.set === set);
        if (!us.length) continue;
        for (const c of conds) {
          let errs = 0, words = 0;
          for (const u of us) {
            const hyp = await e.run(audio.get(`${u.id}|${c.snr}|${c.ns}`)!);
            const ref = norm(u.ref);
            errs += editDistance(ref, norm(hyp));
            words += ref.length;
          }
          rows.push({ engine: e.name, set, snr: c.snr, ns: c.ns, wer: errs / words, words });
        }
      }
    } finally {
      await e.close();
    }
  }
  await Deno.remove(cache, { recursive: true }).catch(() => {});
  const perFrameMs = timing.ms / timing.frames;
  if (args.includes("--json")) {
    console.log(JSON.stringify({ rows, rnnoise_ms_per_frame: perFrameMs, loadavg: load }));
  } else {
    console.log(
      `RNNoise on/off, WER %, ${utts.filter((u) => u.set === "espeak").length} espeak eval + ${
        utts.filter((u) => u.set === "human").length
      } human recordings; load average at start ${load.map((x) => x.toFixed(1)).join(" ")}\n`,
    );
    console.log("| engine | speech | SNR | WER off | WER on | relative change |");
    console.log("| --- | --- | --- | --- | --- | --- |");
    for (const r of rows.filter((r) => !r.ns)) {
      const on = rows.find((x) => x.engine === r.engine && x.set === r.set && x.snr === r.snr && x.ns);
      if (!on) {
        console.log(
          `| ${r.engine} | ${r.set} (${r.words} words) | clean | ${(100 * r.wer).toFixed(1)} | – | – |`,
        );
        continue;
      }
      const rel = r.wer > 0 ? (on.wer - r.wer) / r.wer : 0;
      console.log(
        `| ${r.engine} | ${r.set} (${r.words} words) | ${r.snr === null ? "clean" : `${r.snr} dB`} | ${
          (100 * r.wer).toFixed(1)
        } | ${(100 * on.wer).toFixed(1)} | ${rel >= 0 ? "+" : ""}${(100 * rel).toFixed(0)} % |`,
      );
    }
    console.log(
      `\nRNNoise CPU: ${perFrameMs.toFixed(3)} ms per 10 ms frame = ${
        (perFrameMs * 10).toFixed(1)
      } % of one core ` +
        `per session (${timing.frames} frames, WASM, this isolate)`,
    );
  }
  Deno.exit(0);
}
