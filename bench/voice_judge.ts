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
import { editDistance } from "../origin/asr/error_rate.ts";
import { wavHeader } from "../protocol/wav.ts";

const arg = (name: string, dflt: number) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : dflt;
};
const limit = arg("--limit", Infinity);
const jobs = arg("--jobs", 2);
const continuous = Deno.args.includes("--continuous");
const split = arg("--split", 1);

const sentences = (await Deno.readTextFile(new URL("voice_judge_sentences.txt", import.meta.url)))
  .split("\n").map((s) => s.trim()).filter((s) => s && !s.startsWith("#")).slice(0, limit);

const normalise = (s: string) =>
  s.toLowerCase().replace(/[’]/g, "'").replace(/[^a-z' ]+/g, " ").replace(/\s+/g, " ").trim();

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
const MODEL = "/usr/share/pocketsphinx/model/en-us";

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
  if (!out.success) throw new Error(`${cmd} failed (${out.code})`);
  return new TextDecoder().decode(out.stdout);
}

/** Writes the synthesized audio as a 16 kHz mono WAV (sox resamples). */
async function write16k(pcm: Int16Array | Float32Array, sampleRate: number, name: string): Promise<void> {
  const i16 = pcm instanceof Int16Array
    ? pcm
    : Int16Array.from(pcm, (x) => Math.max(-32768, Math.min(32767, Math.round(x * 32767))));
  const src = `${dir}/${name}${sampleRate === 16000 ? "" : ".src"}.wav`;
  const bytes = new Uint8Array(44 + i16.byteLength);
  bytes.set(wavHeader(sampleRate, i16.byteLength));
  bytes.set(new Uint8Array(i16.buffer, i16.byteOffset, i16.byteLength), 44);
  await Deno.writeFile(src, bytes);
  if (sampleRate === 16000) return;
  await run("sox", [src, "-r", "16000", "-c", "1", "-b", "16", `${dir}/${name}.wav`]);
  await Deno.remove(src);
}

/**
 * Transcribes files `<prefix>-<i>.wav`. Default: one `pocketsphinx_batch` process per voice (the acoustic model
 * and 27 MB LM load once; each file is one utterance). `--continuous`: one `pocketsphinx_continuous -infile`
 * per file (its VAD splits utterances at pauses; model load per file).
 */
async function transcribe(prefix: string, n: number): Promise<string[]> {
  const names = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
  if (continuous) {
    const out: string[] = [];
    for (const f of names) {
      out.push(await run("pocketsphinx_continuous", ["-infile", `${dir}/${f}.wav`, "-logfn", "/dev/null"]));
    }
    return out.map(clean);
  }
  // `--split N`: N recognizer processes per voice, each on every N-th file
  const byName = new Map<string, string>();
  await Promise.all(Array.from({ length: split }, async (_, k) => {
    const part = `${prefix}.${k}`;
    await Deno.writeTextFile(`${dir}/${part}.ctl`, names.filter((_, i) => i % split === k).join("\n") + "\n");
    await run("pocketsphinx_batch", [
      ...["-hmm", `${MODEL}/en-us`, "-lm", `${MODEL}/en-us.lm.bin`, "-dict", `${MODEL}/cmudict-en-us.dict`],
      ...["-adcin", "yes", "-adchdr", "44", "-cepdir", dir, "-cepext", ".wav", "-ctl", `${dir}/${part}.ctl`],
      ...["-hyp", `${dir}/${part}.hyp`, "-logfn", "/dev/null"],
    ]);
    for (const line of (await Deno.readTextFile(`${dir}/${part}.hyp`)).split("\n")) {
      const m = line.match(/^(.*) \((\S+) -?[0-9]+\)$/);
      if (m) byName.set(m[2], m[1]);
    }
  }));
  return names.map((f) => clean(byName.get(f) ?? ""));
}
const clean = (hyp: string) => normalise(hyp.replace(/<[^>]*>|\[[^\]]*\]|\([0-9]+\)/g, " "));

async function judge(v: Synth, vi: number) {
  let audioS = 0, synthS = 0;
  for (const [i, s] of sentences.entries()) {
    const t0 = performance.now();
    const r = await v.synth(s);
    synthS += (performance.now() - t0) / 1000;
    audioS += r.pcm.length / r.sampleRate;
    await write16k(r.pcm, r.sampleRate, `v${vi}-${i}`);
  }
  const hyps = await transcribe(`v${vi}`, sentences.length);
  let errors = 0, words = 0;
  for (const [i, s] of sentences.entries()) {
    const ref = normalise(s).split(" ");
    errors += editDistance(ref, hyps[i].split(" ").filter(Boolean));
    words += ref.length;
  }
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
