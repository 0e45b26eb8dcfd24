/**
 * The judge shared by bench/voice_judge.ts (engine output) and bench/voice_judge_live.ts (audio received over
 * WebRTC): held-out sentences, 16 kHz WAV files, PocketSphinx CLI (`pocketsphinx_batch`, Debian en-us model)
 * and the shared WER.
 */
import { editDistance } from "../origin/asr/error_rate.ts";
import { wavHeader } from "../protocol/wav.ts";

export const MODEL = "/usr/share/pocketsphinx/model/en-us";

export async function heldOutSentences(limit = Infinity): Promise<string[]> {
  return (await Deno.readTextFile(new URL("voice_judge_sentences.txt", import.meta.url)))
    .split("\n").map((s) => s.trim()).filter((s) => s && !s.startsWith("#")).slice(0, limit);
}

export const normalise = (s: string) =>
  s.toLowerCase().replace(/[’]/g, "'").replace(/[^a-z' ]+/g, " ").replace(/\s+/g, " ").trim();

/** A hypothesis without PocketSphinx's fillers and alternate-pronunciation marks. */
export const cleanHyp = (hyp: string) => normalise(hyp.replace(/<[^>]*>|\[[^\]]*\]|\([0-9]+\)/g, " "));

export async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
  if (!out.success) throw new Error(`${cmd} failed (${out.code})`);
  return new TextDecoder().decode(out.stdout);
}

/** Writes `pcm` as `<dir>/<name>.wav`, 16 kHz mono 16-bit (sox resamples other rates). */
export async function write16k(
  dir: string,
  pcm: Int16Array | Float32Array,
  sampleRate: number,
  name: string,
): Promise<void> {
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
 * Transcribes `<dir>/<prefix>-<i>.wav`, i < n, with `split` pocketsphinx_batch processes (each on every
 * split-th file; the acoustic model and LM load once per process, each file is one utterance).
 */
export async function transcribeBatch(dir: string, prefix: string, n: number, split = 1): Promise<string[]> {
  const names = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
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
  return names.map((f) => cleanHyp(byName.get(f) ?? ""));
}

/** Word errors and reference words of hypotheses against their sentences. */
export function score(
  sentences: readonly string[],
  hyps: readonly string[],
): { errors: number; words: number } {
  let errors = 0, words = 0;
  for (const [i, s] of sentences.entries()) {
    const ref = normalise(s).split(" ");
    errors += editDistance(ref, hyps[i].split(" ").filter(Boolean));
    words += ref.length;
  }
  return { errors, words };
}
