import type { TelopPhoneme } from "../../protocol/session_messages.ts";
import type { SynthPhoneme, SynthWord } from "./engine.ts";

/** Estimated timings: words get time proportional to their length; letters map to rough visemes. */
export function estimateTimings(
  text: string,
  durationMs: number,
  visemeOfLetter: (c: string) => TelopPhoneme["viseme"],
): { words: SynthWord[]; phonemes: SynthPhoneme[] } {
  const words: SynthWord[] = [];
  const phonemes: SynthPhoneme[] = [];
  const tokens = [...text.matchAll(/\S+/g)];
  const weight = (w: string) => w.replace(/[^\p{L}\p{N}]/gu, "").length + 1; // +1: gap
  const total = tokens.reduce((s, t) => s + weight(t[0]), 0) || 1;
  let t = 0;
  for (const tok of tokens) {
    const d = (durationMs * weight(tok[0])) / total;
    const letters = [...tok[0].replace(/[^\p{L}\p{N}]/gu, "")];
    words.push({
      text: tok[0].replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, ""),
      start_ms: Math.round(t),
      duration_ms: Math.round(d),
      char_start: tok.index!,
      char_end: tok.index! + tok[0].length,
    });
    const per = letters.length ? (d * (letters.length / (letters.length + 1))) / letters.length : 0;
    letters.forEach((c, i) =>
      phonemes.push({
        phoneme: c,
        start_ms: Math.round(t + i * per),
        duration_ms: Math.round(per),
        viseme: visemeOfLetter(c),
      })
    );
    t += d;
  }
  return { words, phonemes };
}
