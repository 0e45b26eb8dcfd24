/**
 * Text → sentence-sized synthesis chunks, the scheduler's unit of work. Shared by the edge (it chunks at submit,
 * so chunks are stored with the job) and the origin; edge/ and origin/ meet only in db/ and protocol/.
 *
 *  - Clean first: NFC; C0/C1 control characters become a space (tab, newline and other line breaks are kept as
 *    whitespace), lone surrogates and non-characters are dropped. Emoji, RTL text and format characters (ZWJ,
 *    RLM…) pass through unchanged.
 *  - Sentences come from `Intl.Segmenter` (locale-neutral, works for mixed scripts); one sentence is one chunk
 *    unless it is longer than `maxChars`, then it is cut at word boundaries (`Intl.Segmenter` words, so CJK and
 *    Thai without spaces also split between words), preferring a clause mark (, ; : — 、，) in the second half.
 *    A single "word" longer than `maxChars` (a URL, a run of digits) is cut between grapheme clusters, never
 *    inside one (emoji sequences stay whole).
 *  - Tiny neighbouring sentences are merged up to `mergeChars`, so "Yes. No. OK." is one chunk.
 *  - The first chunk is the lead piece of the first sentence when it has a safe cut (./lead_split.ts: a clause or
 *    a few words), alone in its chunk: its synthesis is short, so the first audio leaves sooner, and the rest of
 *    the sentence is synthesized while it plays. The synthesizer trims the pause at such a cut to a phrase break
 *    (`chunkEnd`). Otherwise the first chunk is capped at `firstMaxChars`: a long job's first audio takes about as
 *    long as a short job's.
 *
 * Lengths are UTF-16 code units (≥ code points), so a chunk never exceeds `maxChars` characters either way.
 */

import { splitLead } from "./lead_split.ts";

export interface ChunkOptions {
  maxChars: number;
  firstMaxChars: number;
  mergeChars: number;
  /** Cut the first sentence at its lead piece (./lead_split.ts). */
  lead: boolean;
}

export const DEFAULT_CHUNK_OPTIONS: ChunkOptions = {
  maxChars: 300,
  firstMaxChars: 60,
  mergeChars: 100,
  lead: true,
};

const sentenceSeg = new Intl.Segmenter(undefined, { granularity: "sentence" });
const wordSeg = new Intl.Segmenter(undefined, { granularity: "word" });
const graphemeSeg = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/** Remove what an engine should never see; keep every script, emoji and whitespace structure. */
export function cleanText(text: string): string {
  // Lone surrogates first (they make normalize() and the engine unhappy).
  const wellFormed = text.replace(
    /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g,
    "",
  );
  return wellFormed.normalize("NFC")
    .replace(/\r\n?/g, "\n")
    // deno-lint-ignore no-control-regex -- stripping control characters is the point
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/g, " ")
    .replace(/[\uFDD0-\uFDEF\uFFFE\uFFFF]/g, "")
    .replace(/[\u2028\u2029]/g, "\n");
}

/** Characters the API counts (code points), after cleaning. */
export function countChars(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

const CLAUSE_END = /[,;:\u2014\u2013\u3001\uFF0C\uFF1B\uFF1A\u060C\u061B]\s*$/;

/** Cut one over-long sentence into pieces of at most `max` at word boundaries. */
function splitLong(s: string, max: number): string[] {
  const out: string[] = [];
  let cur = "";
  let lastClause = -1; // length of `cur` just after the last clause mark
  const flush = (upTo: number) => {
    const piece = cur.slice(0, upTo);
    if (piece.trim()) out.push(piece.trim());
    cur = cur.slice(upTo);
    lastClause = -1;
  };
  for (const { segment } of wordSeg.segment(s)) {
    if (segment.length > max) {
      // A "word" longer than a chunk: flush, then cut between grapheme clusters.
      flush(cur.length);
      for (const { segment: g } of graphemeSeg.segment(segment)) {
        if (cur.length + g.length > max) flush(cur.length);
        cur += g;
      }
      continue;
    }
    if (cur.length + segment.length > max) {
      flush(lastClause > max / 2 ? lastClause : cur.length);
    }
    cur += segment;
    if (CLAUSE_END.test(cur)) lastClause = cur.length;
  }
  flush(cur.length);
  return out;
}

/** Split a job's text into chunks. Returns [] for text with nothing speakable left after cleaning. */
export function chunkText(text: string, opts: Partial<ChunkOptions> = {}): string[] {
  const o = { ...DEFAULT_CHUNK_OPTIONS, ...opts };
  const clean = cleanText(text);
  const pieces: string[] = [];
  for (const { segment } of sentenceSeg.segment(clean)) {
    const s = segment.replace(/\s+/g, " ").trim();
    if (!s) continue;
    if (s.length <= o.maxChars) pieces.push(s);
    else pieces.push(...splitLong(s, o.maxChars));
  }
  // the lead piece stays alone in the first chunk; the rest of its sentence may merge with what follows
  const cut = o.lead && pieces.length ? splitLead(pieces[0]) : null;
  if (cut) pieces.splice(0, 1, cut.lead.text, cut.rest.text);
  // merge tiny neighbours
  const merged: string[] = [];
  for (const [i, p] of pieces.entries()) {
    const last = merged.length - 1;
    if (last >= 0 && !(cut && i === 1) && merged[last].length + 1 + p.length <= o.mergeChars) {
      merged[last] += " " + p;
    } else merged.push(p);
  }
  if (!cut && merged.length && merged[0].length > o.firstMaxChars) {
    const head = splitLong(merged[0], o.firstMaxChars);
    const first = head[0];
    const rest = merged[0].slice(merged[0].indexOf(first) + first.length).trim();
    merged.splice(0, 1, first, ...(rest ? [rest] : []));
  }
  return merged;
}

/** How a chunk ends: a whole sentence, or a cut inside one after clause punctuation or between two words. */
export type ChunkEnd = "sentence" | "clause" | "word";

const SENTENCE_END = /[.!?\u2026\u3002\uFF01\uFF1F\u061F]$/u;
const CLOSERS = /["'\u201D\u2019\u00BB)\]}]+$/u;

/**
 * What follows a chunk's last word: the synthesizer keeps an engine's sentence-final pause after a sentence, and
 * trims the pause at a cut inside a sentence (after a clause mark to a phrase break, between words to a joint),
 * so that the chunks of one sentence join like one synthesis.
 */
export function chunkEnd(text: string): ChunkEnd {
  const t = text.trimEnd().replace(CLOSERS, "");
  if (!t || SENTENCE_END.test(t)) return "sentence";
  return CLAUSE_END.test(t) ? "clause" : "word";
}
