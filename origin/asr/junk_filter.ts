/** Whisper's classic hallucinations on non-speech and our quality filter for any engine. */
const HALLUCINATIONS = [
  /^\W*$/,
  /^\s*(thank you|thanks for watching|you|bye)[.!]*\s*$/i,
  /^\s*\[.*\]\s*$/,
  /^\s*\(.*\)\s*$/,
];

/** True when a result should not be shown (empty, punctuation only, known hallucination, looping). */
export function isJunkTranscript(text: string): boolean {
  if (HALLUCINATIONS.some((r) => r.test(text))) return true;
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length >= 8) {
    // one word/bigram repeated across most of the text = decoder loop
    const counts = new Map<string, number>();
    for (const w of words) counts.set(w, (counts.get(w) ?? 0) + 1);
    if (Math.max(...counts.values()) / words.length > 0.6) return true;
  }
  return false;
}
