/**
 * Test and benchmark inputs for the PocketSphinx engine: the availability gate (missing packages fail with the
 * one-line install message, never a skip), real human recordings shipped by Debian's `pocketsphinx-testdata`
 * with the package's own transcripts, and synthetic speech from the Debian `flite` CLI.
 */
import { readWav } from "../../pipeline/wav.ts";
import { detectSphinx } from "./sphinx_detect.ts";

/** Throws the one-line message (naming the Debian packages) when PocketSphinx is not installed. */
export function requireSphinx(): void {
  const a = detectSphinx();
  if (!a.available) throw new Error(a.message);
}

export const SPHINX_TESTDATA = "/usr/share/pocketsphinx/test/data";

export interface Utterance {
  id: string;
  path: string;
  /** The package's transcript, lower case, no sentence marks. */
  ref: string;
}

/** `<s> words </s> (id)` lines, as in pocketsphinx-testdata's `transcription` files. */
export function parseTranscription(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = line.match(/^(.*)\(([^()]+)\)\s*$/);
    if (!m) continue;
    out.set(m[2].trim(), m[1].replace(/<\/?s>/g, " ").replace(/\s+/g, " ").trim().toLowerCase());
  }
  return out;
}

/** The LibriVox "Sense and Sensibility" utterances of pocketsphinx-testdata (16 kHz mono WAV, read speech). */
export function librivoxUtterances(): Utterance[] {
  const dir = `${SPHINX_TESTDATA}/librivox`;
  let refs: Map<string, string>;
  try {
    refs = parseTranscription(Deno.readTextFileSync(`${dir}/transcription`));
  } catch {
    throw new Error(`human test recordings missing (${dir}): apt-get install pocketsphinx-testdata`);
  }
  return [...refs].map(([id, ref]) => ({ id, path: `${dir}/${id}.wav`, ref }));
}

/** 16 kHz mono Int16 samples of a WAV file; refuses other rates (PocketSphinx's model is 16 kHz). */
export function readWav16k(path: string): Int16Array {
  const w = readWav(path);
  if (w.sampleRate !== 16000) throw new Error(`${path}: ${w.sampleRate} Hz, need 16000 (resample with sox)`);
  return w.samples;
}

/** Speech synthesized by the Debian `flite` CLI (16 kHz voices: kal16, awb, rms, slt). */
export async function fliteSpeech(text: string, voice = "rms"): Promise<Int16Array> {
  const out = await Deno.makeTempFile({ suffix: ".wav" });
  try {
    const r = await new Deno.Command("flite", {
      args: ["-voice", voice, "-t", text, "-o", out],
      stderr: "piped",
    })
      .output()
      .catch(() => {
        throw new Error("flite not installed: apt-get install flite");
      });
    if (!r.success) throw new Error(`flite failed: ${new TextDecoder().decode(r.stderr)}`);
    return readWav16k(out);
  } finally {
    await Deno.remove(out).catch(() => {});
  }
}

/** Feeds audio in `chunkMs` pieces, collecting the partial text after each piece. */
export function feed(
  d: { process(x: Int16Array): void; partial(): { text: string } },
  pcm: Int16Array,
  chunkMs = 100,
): Array<{ atMs: number; text: string }> {
  const n = (16000 * chunkMs) / 1000;
  const partials: Array<{ atMs: number; text: string }> = [];
  for (let i = 0; i < pcm.length; i += n) {
    const piece = pcm.subarray(i, i + n);
    d.process(piece);
    partials.push({ atMs: ((i + piece.length) * 1000) / 16000, text: d.partial().text });
  }
  return partials;
}

/** Asserts that `fn` throws an instance of `kind` whose message contains `text`. */
export function assertThrowsKind(
  fn: () => unknown,
  kind: abstract new (...args: never[]) => Error,
  text = "",
): void {
  let caught: unknown = null;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  if (!(caught instanceof kind) || !caught.message.includes(text)) {
    throw new Error(`expected ${kind.name} containing "${text}", got ${caught}`);
  }
}
