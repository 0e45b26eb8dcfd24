/**
 * `deno task bench voice_judge`: how well a recognizer trained on human speech (Debian PocketSphinx en-us, CLI)
 * understands each voice. Every held-out sentence of voice_judge_sentences.txt is synthesized through the real
 * engine classes (espeak en-us, flite kal16/awb/rms/slt/kal), resampled to 16 kHz mono with sox, transcribed by
 * PocketSphinx (CLI, Debian en-us model), and scored with the shared WER; one table, all voices side by side.
 *
 * Flags: `--limit N` (first N sentences), `--jobs N` (voices judged side by side, default 2), `--voices rms,slt,en-us`,
 * `--split N` (recognizer processes per voice, default 1),
 * `--continuous`.
 *
 * Synthesis speed columns are wall time on a shared machine: indicative only (bench/flite_speed.ts measures CPU).
 */
import { EspeakEngine } from "../origin/tts/espeak_engine.ts";
import { FliteEngine } from "../origin/tts/flite/engine.ts";
import { cleanHyp, heldOutSentences, run, score, transcribeBatch, write16k } from "./sphinx_judge.ts";

const arg = (name: string, dflt: number) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : dflt;
};
const limit = arg("--limit", Infinity);
const jobs = arg("--jobs", 2);
const continuous = Deno.args.includes("--continuous");
const split = arg("--split", 1);

const sentences = await heldOutSentences(limit);

interface Synth {
  label: string;
  synth(text: string): Promise<{ pcm: Int16Array | Float32Array; sampleRate: number }>;
}

const espeak = await EspeakEngine.load("en-us");
const flite = await FliteEngine.load();
const allVoices: Synth[] = [
  { label: "espeak en-us", synth: (t) => espeak.synthesize(t, "en-us") },
  ...["rms", "slt", "kal16", "awb", "kal"].map((v) => ({
    label: `flite ${v}`,
    synth: (t: string) => flite.synthesize(t, v),
  })),
];

const only = Deno.args.includes("--voices") ? Deno.args[Deno.args.indexOf("--voices") + 1].split(",") : null;
const voices = allVoices.filter((v) => !only || only.some((o) => v.label.endsWith(` ${o}`)));
const dir = await Deno.makeTempDir({ prefix: "voice-judge-" });

/**
 * Transcribes files `<prefix>-<i>.wav`. Default: `pocketsphinx_batch` (sphinx_judge.ts). `--continuous`: one
 * `pocketsphinx_continuous -infile` per file (its VAD splits utterances at pauses; model load per file).
 */
async function transcribe(prefix: string, n: number): Promise<string[]> {
  if (!continuous) return transcribeBatch(dir, prefix, n, split);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      await run("pocketsphinx_continuous", ["-infile", `${dir}/${prefix}-${i}.wav`, "-logfn", "/dev/null"]),
    );
  }
  return out.map(cleanHyp);
}

async function judge(v: Synth, vi: number) {
  let audioS = 0, synthS = 0;
  for (const [i, s] of sentences.entries()) {
    const t0 = performance.now();
    const r = await v.synth(s);
    synthS += (performance.now() - t0) / 1000;
    audioS += r.pcm.length / r.sampleRate;
    await write16k(dir, r.pcm, r.sampleRate, `v${vi}-${i}`);
  }
  const hyps = await transcribe(`v${vi}`, sentences.length);
  const { errors, words } = score(sentences, hyps);
  console.log(`${v.label}: WER ${(100 * errors / words).toFixed(1)}% (${errors}/${words})`);
  return { label: v.label, errors, words, audioS, synthS };
}

// synthesis is sequential per engine; recognizers of up to `jobs` voices run side by side
const rows: Array<{ label: string; errors: number; words: number; audioS: number; synthS: number }> = [];
const pending = new Set<Promise<void>>();
for (const [vi, v] of voices.entries()) {
  const p: Promise<void> = judge(v, vi).then((r) => void rows.push(r)).finally(() => pending.delete(p));
  pending.add(p);
  if (pending.size >= jobs) await Promise.race(pending);
}
await Promise.all(pending);
await espeak.close();
await flite.close();
await Deno.remove(dir, { recursive: true });

console.log(
  `\nvoice judge: ${sentences.length} held-out sentences, PocketSphinx en-us (${
    continuous ? "pocketsphinx_continuous per file" : "pocketsphinx_batch"
  }), WER`,
);
console.log("| voice | WER | errors / words | audio s | synth wall s | audio s per wall s |");
console.log("|---|---|---|---|---|---|");
for (const r of [...rows].sort((a, b) => a.errors / a.words - b.errors / b.words)) {
  console.log(
    `| ${r.label} | ${(100 * r.errors / r.words).toFixed(1)} % | ${r.errors} / ${r.words} | ${
      r.audioS.toFixed(1)
    } | ${r.synthS.toFixed(2)} | ${(r.audioS / r.synthS).toFixed(1)} |`,
  );
}
