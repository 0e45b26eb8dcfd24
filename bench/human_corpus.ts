/**
 * Real human speech recordings that Debian packages ship, with transcripts taken from the packages themselves
 * (never from a recognizer's output):
 *
 *  - `pocketsphinx-testdata`: /usr/share/pocketsphinx/test/data/librivox/*.wav — five read sentences from the
 *    LibriVox recording of "Sense and Sensibility" (16 kHz), transcripts in the package's `librivox/transcription`;
 *    /usr/share/pocketsphinx/test/data/cards/00[1-5].wav — spoken playing-card names (16 kHz), transcripts in
 *    `cards/cards.transcription`.
 *  - `alsa-utils`: /usr/share/sounds/alsa/{Front,Rear,Side}_{Left,Center,Right}.wav — the channel names that
 *    `speaker-test -t wav` announces (48 kHz); the transcript is the file name ("Front_Center" → "front center",
 *    which speaker-test plays for that channel). Noise.wav is not speech and is left out.
 *
 *   deno run -A bench/human_corpus.ts          # lists the corpus (id, package, seconds, transcript)
 *   deno run -A bench/human_corpus.ts --json
 *
 * Missing packages: `apt-get install pocketsphinx-testdata alsa-utils` (.ci/run installs them).
 */
import { parseTranscription, SPHINX_TESTDATA } from "../origin/asr/sphinx/sphinx_testdata.ts";

export interface HumanRecording {
  id: string;
  /** Debian package that ships it. */
  pkg: string;
  group: "librivox" | "cards" | "alsa";
  /** As shipped (any rate). */
  path: string;
  /** Reference transcript, lower case words. */
  ref: string;
}

export const HUMAN_CORPUS_PACKAGES = ["pocketsphinx-testdata", "alsa-utils"];

function fromTranscription(dir: string, file: string, group: HumanRecording["group"]): HumanRecording[] {
  const refs = parseTranscription(Deno.readTextFileSync(`${dir}/${file}`));
  return [...refs].map(([id, ref]) => ({
    id: `${group}/${id}`,
    pkg: "pocketsphinx-testdata",
    group,
    path: `${dir}/${id}.wav`,
    ref,
  }));
}

const ALSA_DIR = "/usr/share/sounds/alsa";

/** Every recording present on this machine; throws naming the packages when one is missing. */
export function humanCorpus(): HumanRecording[] {
  const missing: string[] = [];
  try {
    Deno.statSync(`${SPHINX_TESTDATA}/librivox/transcription`);
  } catch {
    missing.push("pocketsphinx-testdata");
  }
  try {
    Deno.statSync(`${ALSA_DIR}/Front_Center.wav`);
  } catch {
    missing.push("alsa-utils");
  }
  if (missing.length) throw new Error(`human recordings missing: apt-get install ${missing.join(" ")}`);
  const alsa = [...Deno.readDirSync(ALSA_DIR)]
    .map((e) => e.name)
    .filter((n) => /^(Front|Rear|Side)_(Left|Center|Right)\.wav$/.test(n))
    .sort()
    .map((n) => ({
      id: `alsa/${n.replace(/\.wav$/, "")}`,
      pkg: "alsa-utils",
      group: "alsa" as const,
      path: `${ALSA_DIR}/${n}`,
      ref: n.replace(/\.wav$/, "").replace("_", " ").toLowerCase(),
    }));
  return [
    ...fromTranscription(`${SPHINX_TESTDATA}/librivox`, "transcription", "librivox"),
    ...fromTranscription(`${SPHINX_TESTDATA}/cards`, "cards.transcription", "cards"),
    ...alsa,
  ];
}

/** A 16 kHz mono 16-bit WAV of the recording (sox-converted into `cacheDir` when it is not one already). */
export async function wav16k(rec: HumanRecording, cacheDir: string): Promise<string> {
  const info = await new Deno.Command("soxi", { args: ["-r", rec.path], stdout: "piped" }).output();
  const chans = await new Deno.Command("soxi", { args: ["-c", rec.path], stdout: "piped" }).output();
  const rate = Number(new TextDecoder().decode(info.stdout).trim());
  if (rate === 16000 && new TextDecoder().decode(chans.stdout).trim() === "1") return rec.path;
  const out = `${cacheDir}/${rec.id.replace(/\//g, "_")}.wav`;
  const r = await new Deno.Command("sox", {
    args: [rec.path, "-r", "16000", "-c", "1", "-b", "16", out],
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(`sox failed on ${rec.path}: ${new TextDecoder().decode(r.stderr)}`);
  return out;
}

/** Duration in seconds. */
export async function durationS(path: string): Promise<number> {
  const r = await new Deno.Command("soxi", { args: ["-D", path], stdout: "piped" }).output();
  return Number(new TextDecoder().decode(r.stdout).trim());
}

if (import.meta.main) {
  const corpus = humanCorpus();
  if (Deno.args.includes("--json")) {
    console.log(JSON.stringify(corpus, null, 2));
  } else {
    console.log("| id | package | s | transcript |\n| --- | --- | --- | --- |");
    let total = 0, words = 0;
    for (const r of corpus) {
      const s = await durationS(r.path);
      total += s;
      words += r.ref.split(" ").length;
      console.log(`| ${r.id} | ${r.pkg} | ${s.toFixed(2)} | ${r.ref} |`);
    }
    console.log(`\n${corpus.length} recordings, ${total.toFixed(1)} s, ${words} reference words`);
  }
}
