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
 *  - The first chunk is capped at `firstMaxChars`: a long job's first audio takes about as long as a short job's.
 *
 * Lengths are UTF-16 code units (≥ code points), so a chunk never exceeds `maxChars` characters either way.
 */

export interface ChunkOptions {
  maxChars: number;
  firstMaxChars: number;
  mergeChars: number;
}

export const DEFAULT_CHUNK_OPTIONS: ChunkOptions = { maxChars: 300, firstMaxChars: 60, mergeChars: 100 };

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
  // merge tiny neighbours
  const merged: string[] = [];
  for (const p of pieces) {
    const last = merged.length - 1;
    if (last >= 0 && merged[last].length + 1 + p.length <= o.mergeChars) merged[last] += " " + p;
    else merged.push(p);
  }
  if (merged.length && merged[0].length > o.firstMaxChars) {
    const head = splitLong(merged[0], o.firstMaxChars);
    const first = head[0];
    const rest = merged[0].slice(merged[0].indexOf(first) + first.length).trim();
    merged.splice(0, 1, first, ...(rest ? [rest] : []));
  }
  return merged;
}
