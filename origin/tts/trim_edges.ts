/**
 * Shortens the silence an engine puts before the first word and after the last one, using the result's own
 * word timings (exact for flite and espeak). A sentence cut into a lead piece and a rest (protocol/lead_split.ts) is
 * two syntheses, each with a sentence's leading and trailing pause; trimming them to a phrase break's length
 * joins the pieces like one sentence. Word and phoneme times move with the audio: cuts are whole milliseconds
 * of whole samples, so the times stay exact.
 */
import type { SynthPhoneme, SynthWord } from "./engine.ts";

export interface Trimmable {
  pcm: Int16Array;
  sampleRate: number;
  durationMs: number;
  words: SynthWord[];
  phonemes: SynthPhoneme[];
  estimated: boolean;
}

/** Silence kept before the first word of speech that starts in silence (the engine's own is ~170 ms). */
export const START_PAUSE_MS = 60;
/**
 * Pause kept on each side of a cut inside a sentence (protocol/tts_text.ts chunkEnd): after a clause mark ≈ the
 * engine's phrase break; between words, a joint.
 */
export const JOIN_PAUSE_MS = { clause: 60, word: 12 } as const;

/** Pause phones: flite's `pau`, espeak's `_`. */
const PAUSES = new Set(["pau", "_", "sil", ""]);

/** Fade over the cut so that a pause's low noise does not end in a click. */
const FADE_MS = 4;

/**
 * Keeps at most `headMs` of silence before the first word and `tailMs` after the last (unset: unchanged).
 * Without words (SynthesisOptions.words false) the first and last phones other than pauses are the edges. A
 * result with estimated timings, or with neither, is returned unchanged (its edges are not known).
 */
export function trimEdges<T extends Trimmable>(r: T, keep: { headMs?: number; tailMs?: number }): T {
  // the speech's edges: its words, or without word timings its phones other than pauses
  const spoken = r.words.length ? r.words : r.phonemes.filter((p) => !PAUSES.has(p.phoneme));
  if (!spoken.length || r.estimated || !r.pcm.length) return r;
  const perMs = r.sampleRate / 1000;
  if (!Number.isInteger(perMs)) return r; // a cut of whole ms would not be whole samples
  const firstStart = Math.min(...spoken.map((w) => w.start_ms));
  const lastEnd = Math.max(...spoken.map((w) => w.start_ms + w.duration_ms));
  const totalMs = Math.floor(r.pcm.length / perMs);
  const headCut = keep.headMs === undefined ? 0 : Math.max(0, Math.floor(firstStart - keep.headMs));
  const endMs = keep.tailMs === undefined ? null : Math.min(totalMs, Math.ceil(lastEnd + keep.tailMs));
  if (headCut === 0 && (endMs === null || endMs >= totalMs)) return r;
  const from = headCut * perMs;
  const to = endMs === null ? r.pcm.length : endMs * perMs;
  if (to <= from) return r;
  const pcm = r.pcm.slice(from, to);
  const fade = Math.min(FADE_MS * perMs, pcm.length >> 1);
  if (headCut > 0) { for (let i = 0; i < fade; i++) pcm[i] = Math.round(pcm[i] * (i / fade)); }
  if (endMs !== null && endMs < totalMs) {
    for (let i = 0; i < fade; i++) pcm[pcm.length - 1 - i] = Math.round(pcm[pcm.length - 1 - i] * (i / fade));
  }
  const durationMs = pcm.length / perMs;
  const words = r.words.map((w) => ({ ...w, start_ms: w.start_ms - headCut }));
  const phonemes: SynthPhoneme[] = [];
  for (const p of r.phonemes) {
    const start = Math.max(0, p.start_ms - headCut);
    const end = Math.min(durationMs, p.start_ms + p.duration_ms - headCut);
    if (end > start) phonemes.push({ ...p, start_ms: start, duration_ms: end - start });
  }
  return { ...r, pcm, durationMs, words, phonemes };
}
