/**
 * The lead piece of a `say` or a TTS job (protocol/tts_text.ts): the first sentence is cut in two so that a short
 * first piece can be synthesized (and heard) while the rest of the sentence is synthesized. The cut keeps the prosody acceptable: at the first
 * clause punctuation (comma, semicolon, colon, dash) when there is one early in the sentence, otherwise between
 * two words, preferably before a conjunction, preposition or article (where a speaker may pause), never inside a
 * word, and only between plain words so that the engine's text normalisation reads both pieces as it would read
 * the sentence ("5 pm", "Dr. Smith", "U.S.A." and "well-known" are never cut).
 */

export interface TextPiece {
  text: string;
  /** Offset of `text` in the text that was split. */
  offset: number;
}

export interface LeadSplit {
  lead: TextPiece;
  rest: TextPiece;
  /** Where the cut is: after clause punctuation, or between two words. */
  at: "punctuation" | "word";
}

export interface LeadSplitLimits {
  /** Sentences shorter than this are not cut (their whole synthesis is quick). */
  minSentenceChars: number;
  /** Shortest lead (characters); a cut also needs at least two words before it. */
  minLeadChars: number;
  /** Shortest lead cut at punctuation (a clause is a natural unit even when short). */
  minPunctLeadChars: number;
  /** Longest lead cut at punctuation. */
  maxPunctLeadChars: number;
  /** Word cuts are looked for up to here (a preferred cut), else the first cut after minLeadChars. */
  maxWordLeadChars: number;
  /** Shortest rest (characters); a cut also needs at least two words after it. */
  minRestChars: number;
}

export const DEFAULT_LEAD_LIMITS: LeadSplitLimits = {
  minSentenceChars: 32,
  minLeadChars: 12,
  minPunctLeadChars: 8,
  maxPunctLeadChars: 48,
  maxWordLeadChars: 32,
  minRestChars: 10,
};

/** A word the engine reads as written: letters, with an inner apostrophe ("it's", "don't"). */
const PLAIN_WORD = /^\p{L}+(?:['’]\p{L}+)*$/u;
const CLAUSE_PUNCT = /^\p{L}+(?:['’]\p{L}+)*[,;:—–]$/u;
/** Words a cut may come before without breaking a phrase apart (English; elsewhere only the first cut counts). */
const BEFORE = new Set([
  "and",
  "but",
  "or",
  "so",
  "because",
  "if",
  "when",
  "while",
  "that",
  "which",
  "who",
  "to",
  "for",
  "with",
  "in",
  "on",
  "at",
  "from",
  "of",
  "about",
  "after",
  "before",
  "the",
  "a",
  "an",
]);

/** Words a cut never comes after: they lean on the next word ("the | city", "my | phone", "to | snow"). */
const NOT_AFTER = new Set([
  ...BEFORE,
  "my",
  "your",
  "his",
  "her",
  "its",
  "our",
  "their",
  "this",
  "these",
  "those",
  "some",
  "any",
  "every",
  "no",
  "very",
  "not",
]);

/**
 * Cuts `text` (one sentence, trimmed) into a lead and a rest, or returns null when it is too short or has no
 * safe place to cut. `lead.text + " " + rest.text` covers the text; both pieces are trimmed.
 */
export function splitLead(text: string, limits: Partial<LeadSplitLimits> = {}): LeadSplit | null {
  const lim = { ...DEFAULT_LEAD_LIMITS, ...limits };
  if (text.length < lim.minSentenceChars) return null;
  const tokens = [...text.matchAll(/\S+/g)].map((m) => ({
    s: m[0],
    start: m.index!,
    end: m.index! + m[0].length,
  }));
  if (tokens.length < 4) return null;
  const cutAfter = (k: number, at: LeadSplit["at"]): LeadSplit | null => {
    const lead = text.slice(tokens[0].start, tokens[k].end);
    const rest = text.slice(tokens[k + 1].start, tokens.at(-1)!.end);
    if (rest.length < lim.minRestChars) return null;
    return {
      lead: { text: lead, offset: tokens[0].start },
      rest: { text: rest, offset: tokens[k + 1].start },
      at,
    };
  };
  // candidates: cut after token k (k ≥ 1: two words before; k ≤ n-3: two words after)
  for (let k = 1; k <= tokens.length - 3; k++) {
    if (tokens[k].end - tokens[0].start > lim.maxPunctLeadChars) break;
    if (tokens[k].end - tokens[0].start < lim.minPunctLeadChars) continue;
    if (CLAUSE_PUNCT.test(tokens[k].s) && PLAIN_WORD.test(stripQuotes(tokens[k + 1].s))) {
      const r = cutAfter(k, "punctuation");
      if (r) return r;
    }
  }
  let first = -1;
  for (let k = 1; k <= tokens.length - 3; k++) {
    const len = tokens[k].end - tokens[0].start;
    if (len < lim.minLeadChars) continue;
    if (len > lim.maxWordLeadChars && first >= 0) break;
    if (len > 2 * lim.maxPunctLeadChars) break; // a lead this long would not be heard much sooner
    if (!PLAIN_WORD.test(tokens[k].s) || !PLAIN_WORD.test(tokens[k + 1].s)) continue;
    if (NOT_AFTER.has(tokens[k].s.toLowerCase())) continue;
    if (first < 0) first = k;
    if (BEFORE.has(tokens[k + 1].s.toLowerCase())) return cutAfter(k, "word") ?? cutAfter(first, "word");
  }
  return first >= 0 ? cutAfter(first, "word") : null;
}

const stripQuotes = (s: string) => s.replace(/^["“‘(]+/, "");
