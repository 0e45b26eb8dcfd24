/** Not speech in any engine's output: empty, punctuation only, a bracketed sound tag. */
const NOT_SPEECH = [
  /^\W*$/,
  /^\s*\[.*\]\s*$/,
  /^\s*\(.*\)\s*$/,
];
/**
 * Whisper's classic hallucinations on non-speech. Only for engines that make them up: from Moonshine, ctc or
 * PocketSphinx "Thank you." or "Bye." is what the person said.
 */
const WHISPER_HALLUCINATIONS = /^\s*(thank you|thanks for watching|you|bye)[.!]*\s*$/i;

/** Engines whose results get the WHISPER_HALLUCINATIONS filter. */
export function makesUpPhrases(engine: string): boolean {
  return engine === "whisper";
}

/**
 * True when a result should not be shown (empty, punctuation only, a sound tag, looping; with `phrases`, a
 * known hallucination).
 */
export function isJunkTranscript(text: string, opts: { phrases?: boolean } = {}): boolean {
  if (NOT_SPEECH.some((r) => r.test(text))) return true;
  if ((opts.phrases ?? true) && WHISPER_HALLUCINATIONS.test(text)) return true;
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length >= 8) {
    // one word/bigram repeated across most of the text = decoder loop
    const counts = new Map<string, number>();
    for (const w of words) counts.set(w, (counts.get(w) ?? 0) + 1);
    if (Math.max(...counts.values()) / words.length > 0.6) return true;
  }
  return false;
}

/**
 * True when a result is too unsure to show: with word confidences, when every word is below `threshold` (one
 * clearly heard word keeps the segment); without them, when the segment confidence is below it. Engines that
 * report no confidence are never dropped here.
 */
export function isLowConfidence(
  r: { confidence: number | null; words?: ReadonlyArray<{ confidence: number | null }> },
  threshold: number,
): boolean {
  const scored = r.words?.filter((w) => w.confidence !== null) ?? [];
  if (scored.length > 0) return scored.every((w) => (w.confidence as number) < threshold);
  return r.confidence !== null && r.confidence < threshold;
}

/**
 * Per-engine low-confidence threshold (RecognizerConfig.minConfidence) where the engine's measure has been
 * calibrated; others use the recognizer's default. ctc and sphinx: set on development speech and non-speech
 * (bench/confidence_threshold.ts; docs/recognition.md), never on evaluation transcripts. sphinx is 0 (no
 * filter): its lattice posteriors give junk on noise 1.0, so any higher threshold only drops speech. moonshine is
 * 0 too: it gave no words at all for any of the non-speech sounds, so a threshold could only drop speech.
 */
export const MIN_CONFIDENCE_BY_ENGINE: Readonly<Partial<Record<string, number>>> = {
  ctc: 0.6,
  sphinx: 0,
  moonshine: 0,
};
