/**
 * Phoneme → viseme (mouth shape) classes for lip-sync: a/i/u/e/o (open vowels, Japanese-style), `closed`
 * (bilabials p/b/m: lips shut) and `rest` (pauses, other consonants: neutral mouth).
 */
import type { Viseme } from "../../protocol/session_messages.ts";

const VOWEL_CLASSES: Array<[RegExp, Viseme]> = [
  // diphthongs: classify by their first (dominant) element
  [/^(aɪ|aʊ|a|ɑ|æ|ʌ|ɐ|ɑː|aː|ɶ)/, "a"],
  [/^(oʊ|əʊ|ɔɪ|o|ɔ|ɒ|ɔː|oː)/, "o"],
  [/^(eɪ|e|ɛ|ə|ɜ|ɚ|ɝ|œ|ø|ɘ|ɤ|eː|ɛː)/, "e"],
  [/^(i|ɪ|y|ʏ|ɨ|iː|j)/, "i"],
  [/^(u|ʊ|ɯ|ʉ|uː|w)/, "u"],
];

/** IPA phoneme (with stress/length marks) → viseme. */
export function visemeOf(phoneme: string): Viseme {
  const p = phoneme.replace(/[ˈˌ'",%=_:.\-]/g, "").trim();
  if (!p) return "rest";
  if (/^[pbmɱ]/.test(p)) return "closed";
  for (const [re, v] of VOWEL_CLASSES) if (re.test(p)) return v;
  // syllabic consonants and r-coloured schwa carry a vowel shape
  if (/^[lnɹr]̩/.test(p)) return "e";
  return "rest";
}

/** Rough letter → viseme for engines without phoneme output (estimated timings). */
export function visemeOfLetter(ch: string): Viseme {
  const c = ch.toLowerCase();
  if ("a".includes(c)) return "a";
  if ("iy".includes(c)) return "i";
  if ("uw".includes(c)) return "u";
  if ("e".includes(c)) return "e";
  if ("o".includes(c)) return "o";
  if ("pbm".includes(c)) return "closed";
  return "rest";
}
