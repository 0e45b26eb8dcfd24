/**
 * PocketSphinx choices measured on DEVELOPMENT speech only, never on the human evaluation corpus
 * (bench/human_corpus.ts): flite's 16 kHz voices rms, slt and awb speaking the 40 sentences of
 * bench/sphinx_dev_sentences.txt (drawn at random from the bundled model's training text, so from no
 * evaluation set). Two questions:
 *
 *  - `--settings`: decoder settings that cost less CPU than the `live` preset (frame skipping, fewer Gaussians,
 *    narrower beams): WER clean and with pink noise at 10 dB, and CPU per audio second (this thread).
 *  - `--rnnoise`: ways to pair RNNoise with PocketSphinx at 5 dB SNR (white / pink / brown noise from sox, one
 *    colour per utterance in turn, as bench/noise_suppression.ts mixes them): RNNoise as the pipeline runs it,
 *    with PocketSphinx's own spectral subtraction off, with dither, and a blend that keeps 15 % of what RNNoise
 *    removed.
 *
 *   deno run -A bench/sphinx_dev.ts [--settings] [--rnnoise] [--sentences 40]
 */
import { SphinxDecoder } from "../origin/asr/sphinx/sphinx_decoder.ts";
import { SPHINX_SEARCH_PRESETS, sphinxConfigFromEnv } from "../origin/asr/sphinx/sphinx_detect.ts";
import { fliteSpeech } from "../origin/asr/sphinx/sphinx_testdata.ts";
import { toInt16 } from "../origin/asr/sphinx/pcm.ts";
import { wordErrorRate } from "../origin/asr/error_rate.ts";
import { int16ToFloat } from "../lib/audio/resampler.ts";
import { COLOURS, denoise, mix, soxNoise } from "./noise_suppression.ts";

const args = Deno.args;
const nSentences = args.includes("--sentences") ? Number(args[args.indexOf("--sentences") + 1]) : 40;
const doSettings = args.includes("--settings") || !args.includes("--rnnoise");
const doRnnoise = args.includes("--rnnoise") || !args.includes("--settings");
const LIVE = [...SPHINX_SEARCH_PRESETS.live];

const cpuSeconds = () => {
  const f = Deno.readTextFileSync("/proc/thread-self/stat").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
};

interface Utt {
  ref: string;
  pcm: Float32Array;
}

/** WER over the utterances and CPU seconds per audio second of this thread. */
function score(extraArgs: string[], utts: Utt[]): { wer: number; cpuRtf: number } {
  const d = SphinxDecoder.open({ ...sphinxConfigFromEnv(), extraArgs });
  try {
    let errs = 0, words = 0, audioS = 0;
    const c0 = cpuSeconds();
    for (const u of utts) {
      d.start();
      const x = toInt16(u.pcm);
      for (let i = 0; i < x.length; i += 1600) d.process(x.subarray(i, i + 1600));
      const r = d.finish();
      d.reset();
      const n = u.ref.split(" ").length;
      errs += wordErrorRate(u.ref, r.text) * n;
      words += n;
      audioS += x.length / 16000;
    }
    return { wer: errs / words, cpuRtf: (cpuSeconds() - c0) / audioS };
  } finally {
    d.close();
  }
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
const sentences = Deno.readTextFileSync(new URL("./sphinx_dev_sentences.txt", import.meta.url)).trim().split(
  "\n",
)
  .slice(0, nSentences);
const clean: Utt[] = [];
for (const s of sentences) {
  for (const voice of ["rms", "slt", "awb"]) {
    clean.push({ ref: s, pcm: int16ToFloat(await fliteSpeech(s, voice)) });
  }
}
const dir = await Deno.makeTempDir({ prefix: "parley-sphinx-dev-" });
try {
  const noisy = async (snr: number, colours: readonly string[]) => {
    const out: Utt[] = [];
    for (const [i, u] of clean.entries()) {
      out.push({
        ref: u.ref,
        pcm: mix(u.pcm, await soxNoise(colours[i % colours.length], u.pcm.length, dir), snr),
      });
    }
    return out;
  };
  console.log(
    `development speech: ${clean.length} utterances (${sentences.length} sentences × flite rms/slt/awb), ${
      clean.reduce((n, u) => n + u.ref.split(" ").length, 0)
    } words; load average ${Deno.loadavg()[0].toFixed(1)}\n`,
  );
  if (doSettings) {
    const pink10 = await noisy(10, ["pinknoise"]);
    const variants: [string, string[]][] = [
      ["live (default)", LIVE],
      ["live -ds 2", [...LIVE, "-ds", "2"]],
      ["live -topn 2", [...LIVE, "-topn", "2"]],
      ["live -ds 2 -topn 2", [...LIVE, "-ds", "2", "-topn", "2"]],
      ["live -beam 1e-40 -pbeam 1e-40", [...LIVE, "-beam", "1e-40", "-pbeam", "1e-40"]],
    ];
    console.log("| settings | WER clean | WER pink 10 dB | CPU per audio s (clean) |");
    console.log("| --- | --- | --- | --- |");
    for (const [name, extra] of variants) {
      const a = score(extra, clean);
      const b = score(extra, pink10);
      console.log(`| ${name} | ${pct(a.wer)} | ${pct(b.wer)} | ${a.cpuRtf.toFixed(3)} |`);
    }
    console.log();
  }
  if (doRnnoise) {
    const snr5 = await noisy(5, COLOURS);
    const timing = { ms: 0, frames: 0 };
    const suppressed = async (blend: number) => {
      const out: Utt[] = [];
      for (const u of snr5) out.push({ ref: u.ref, pcm: await denoise(u.pcm, timing, blend) });
      return out;
    };
    const ns = await suppressed(0);
    const ns15 = await suppressed(0.15);
    const off = score(LIVE, snr5).wer;
    const rows: [string, number][] = [
      ["RNNoise (as the pipeline runs it)", score(LIVE, ns).wer],
      ["RNNoise, PocketSphinx -remove_noise no", score([...LIVE, "-remove_noise", "no"], ns).wer],
      ["RNNoise, PocketSphinx -dither yes", score([...LIVE, "-dither", "yes"], ns).wer],
      ["RNNoise blended (15 % of the removed signal kept)", score(LIVE, ns15).wer],
      ["no RNNoise, PocketSphinx -remove_noise no", score([...LIVE, "-remove_noise", "no"], snr5).wer],
    ];
    console.log(`5 dB SNR (white / pink / brown in turn): WER without suppression ${pct(off)}\n`);
    console.log("| variant | WER | relative to no suppression |");
    console.log("| --- | --- | --- |");
    for (const [name, wer] of rows) {
      const rel = Math.round((100 * (wer - off)) / off);
      console.log(`| ${name} | ${pct(wer)} | ${rel > 0 ? "+" : ""}${rel} % |`);
    }
  }
} finally {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
