/**
 * Exact word and phoneme timings from flite's own segment durations.
 *
 * flite prints, per run, one flat listing: `-psdur` the phones with their end times (the Segment relation),
 * `-pw` the normalised words (the Word relation; "It's 5 pm" → "it 's five pm"). It has no way to print the
 * word ⇄ phone tree (SylStructure: `-pr SylStructure` prints only its top level, `-pr Syllable` traps), so:
 *
 *  1. words starting with an apostrophe are joined to the previous one ("it" "'s" → "it's"): a *group*;
 *  2. each group's phones come from a second run of flite on the groups separated by commas (`-ps`): every
 *     comma is a phrase break, so the listing has one `pau` between groups;
 *  3. the real phone sequence is aligned to the concatenated group phones (edit-distance alignment, so that
 *     post-lexical changes at word joins cost a substitution, not a misalignment): every real phone gets the
 *     group of the phone it aligns with; a group's time is [start of its first phone, end of its last];
 *  4. groups are mapped back to the whitespace tokens of the input ("5" → "five", "Dr." → "doctor",
 *     "U.S.A." → "u s a"): a token whose letters equal a group's is matched 1:1; tokens in between take the
 *     groups in between.
 * The times themselves are flite's (never estimated); only the word labels of phones are derived.
 */
import type { SynthPhoneme, SynthWord } from "../engine.ts";
import { visemeOfArpabet } from "./arpabet.ts";

export interface TimedPhone {
  phone: string;
  startS: number;
  endS: number;
}

/** Parses `-psdur` output ("pau:0.164 hh:0.255 …") into phones with start/end seconds. */
export function parsePsdur(out: string): TimedPhone[] {
  const phones: TimedPhone[] = [];
  let prev = 0;
  for (const m of out.matchAll(/([a-z]+[0-9]?):([0-9]+(?:\.[0-9]+)?)/g)) {
    const end = Number(m[2]);
    phones.push({ phone: m[1].replace(/[0-9]/g, ""), startS: prev, endS: Math.max(prev, end) });
    prev = Math.max(prev, end);
  }
  return phones;
}

/** Splits `-ps` output of the comma-separated groups into per-group phone lists (pauses are separators). */
export function parseGroupPhones(out: string): string[][] {
  const groups: string[][] = [];
  let cur: string[] = [];
  for (const p of out.trim().split(/\s+/).filter(Boolean)) {
    const ph = p.replace(/[0-9]/g, "");
    if (ph === "pau") {
      if (cur.length) groups.push(cur);
      cur = [];
    } else cur.push(ph);
  }
  if (cur.length) groups.push(cur);
  return groups;
}

/** Joins apostrophe-initial words to the previous word: "it" "'s" → "it's". */
export function wordGroups(words: readonly string[]): string[] {
  const out: string[] = [];
  for (const w of words) {
    if (w.startsWith("'") && out.length) out[out.length - 1] += w;
    else out.push(w);
  }
  return out;
}

/**
 * Labels every non-pause phone of `real` with the index of the group it belongs to, by aligning it to the
 * concatenation of `pron` (phones per group). Returns -1 for pauses.
 */
export function labelPhones(real: readonly TimedPhone[], pron: readonly (readonly string[])[]): number[] {
  const a: number[] = []; // indices into real of non-pause phones
  real.forEach((p, i) => p.phone !== "pau" && a.push(i));
  const b: Array<{ ph: string; g: number }> = [];
  pron.forEach((ps, g) => ps.forEach((ph) => b.push({ ph, g })));
  const n = a.length, m = b.length;
  const cost = new Uint32Array((n + 1) * (m + 1));
  const W = m + 1;
  for (let i = 0; i <= n; i++) cost[i * W] = i;
  for (let j = 0; j <= m; j++) cost[j] = j;
  for (let i = 1; i <= n; i++) {
    for (let j = 1; j <= m; j++) {
      const same = real[a[i - 1]].phone === b[j - 1].ph ? 0 : 1;
      cost[i * W + j] = Math.min(
        cost[(i - 1) * W + j - 1] + same,
        cost[(i - 1) * W + j] + 1,
        cost[i * W + j - 1] + 1,
      );
    }
  }
  const labelA = new Array<number>(n).fill(-1);
  let i = n, j = m;
  while (i > 0 && j > 0) {
    const same = real[a[i - 1]].phone === b[j - 1].ph ? 0 : 1;
    if (cost[i * W + j] === cost[(i - 1) * W + j - 1] + same) {
      labelA[i - 1] = b[j - 1].g;
      i--;
      j--;
    } else if (cost[i * W + j] === cost[(i - 1) * W + j] + 1) i--; // extra real phone: labelled below
    else j--;
  }
  // unaligned real phones take the group of the phone before them (or after, at the start)
  for (let k = 0; k < n; k++) if (labelA[k] < 0 && k > 0) labelA[k] = labelA[k - 1];
  for (let k = n - 1; k >= 0; k--) if (labelA[k] < 0) labelA[k] = k + 1 < n ? labelA[k + 1] : 0;
  // groups are in order: never let a label go backwards
  for (let k = 1; k < n; k++) if (labelA[k] < labelA[k - 1]) labelA[k] = labelA[k - 1];
  const labels = new Array<number>(real.length).fill(-1);
  a.forEach((ri, k) => labels[ri] = labelA[k]);
  return labels;
}

export interface SourceToken {
  /** Character range of the token in the input text (surrounding punctuation excluded). */
  start: number;
  end: number;
  key: string;
}

/** Whitespace tokens of the input that contain a letter or digit, trimmed of surrounding punctuation. */
export function sourceTokens(text: string): SourceToken[] {
  const out: SourceToken[] = [];
  for (const m of text.matchAll(/\S+/g)) {
    const raw = m[0];
    const lead = raw.match(/^[^\p{L}\p{N}]*/u)![0].length;
    const trail = raw.match(/[^\p{L}\p{N}]*$/u)![0].length;
    if (lead >= raw.length) {
      // a lone symbol that flite speaks ("&" → "and", "%" → "percent") is a word of its own
      if (SPOKEN_SYMBOL.test(raw)) out.push({ start: m.index!, end: m.index! + raw.length, key: "" });
      continue;
    }
    const core = raw.slice(lead, raw.length - trail);
    out.push({ start: m.index! + lead, end: m.index! + raw.length - trail, key: keyOf(core) });
  }
  return out;
}

const SPOKEN_SYMBOL = /[&%$@#+=€£¥°]/;
const keyOf = (s: string) => s.toLowerCase().replace(/[’]/g, "'").replace(/[^\p{L}\p{N}']/gu, "");

/**
 * Maps groups (normalised words) to source tokens: returns, for each source-token span, the range of groups
 * it produced. Consecutive unmatched tokens share one span (e.g. "5 10" → "five ten": which word came from which
 * token is not knowable from flite's output).
 */
export function mapGroupsToTokens(
  tokens: readonly SourceToken[],
  groups: readonly string[],
): Array<{ tokenFrom: number; tokenTo: number; groupFrom: number; groupTo: number }> {
  const gkey = groups.map((g) => keyOf(g.replace(/^_/, "")));
  const spans: Array<{ tokenFrom: number; tokenTo: number; groupFrom: number; groupTo: number }> = [];
  const WINDOW = 12;
  let i = 0, j = 0;
  while (i < tokens.length) {
    if (j < groups.length && tokens[i].key === gkey[j]) {
      spans.push({ tokenFrom: i, tokenTo: i + 1, groupFrom: j, groupTo: j + 1 });
      i++;
      j++;
      continue;
    }
    // flite said something extra before this token's word: those groups belong to the previous span
    const ahead = tokens[i].key ? gkey.indexOf(tokens[i].key, j + 1) : -1;
    if (
      ahead > j && ahead <= j + 2 && spans.length &&
      !gkey.slice(j, ahead).some((k) => tokens.some((t) => t.key === k))
    ) {
      spans[spans.length - 1].groupTo = ahead;
      j = ahead;
      continue;
    }
    // the next token (after i) that matches a group within reach
    let nk = tokens.length, ng = groups.length;
    search: for (let k = i + 1; k < tokens.length; k++) {
      for (let g = j; g < Math.min(groups.length, j + WINDOW); g++) {
        if (tokens[k].key === gkey[g]) {
          nk = k;
          ng = g;
          break search;
        }
      }
    }
    spans.push({ tokenFrom: i, tokenTo: nk, groupFrom: j, groupTo: Math.max(j, ng) });
    i = nk;
    j = Math.max(j, ng);
  }
  return spans;
}

/** Telop phonemes (pauses included) of flite's timed phones, in whole ms within the audio. */
export function timedPhonemes(real: readonly TimedPhone[], durationMs: number): SynthPhoneme[] {
  const ms = (s: number) => Math.min(durationMs, Math.round(s * 1000));
  return real.map((p) => ({
    phoneme: p.phone,
    start_ms: ms(p.startS),
    duration_ms: Math.max(0, ms(p.endS) - ms(p.startS)),
    viseme: visemeOfArpabet(p.phone),
  }));
}

/** Builds telop words (one per source-token span) and phonemes from the aligned listing. */
export function buildTimings(
  text: string,
  real: readonly TimedPhone[],
  groups: readonly string[],
  pron: readonly (readonly string[])[],
  durationMs: number,
): { words: SynthWord[]; phonemes: SynthPhoneme[] } {
  const ms = (s: number) => Math.min(durationMs, Math.round(s * 1000));
  const phonemes = timedPhonemes(real, durationMs);
  const labels = labelPhones(real, pron);
  const gStart = new Array<number>(groups.length).fill(Infinity);
  const gEnd = new Array<number>(groups.length).fill(-Infinity);
  labels.forEach((g, k) => {
    if (g < 0) return;
    gStart[g] = Math.min(gStart[g], real[k].startS);
    gEnd[g] = Math.max(gEnd[g], real[k].endS);
  });
  const tokens = sourceTokens(text);
  const words: SynthWord[] = [];
  let lastEnd = real.find((p) => p.phone !== "pau")?.startS ?? 0;
  for (const s of mapGroupsToTokens(tokens, groups)) {
    let start = Infinity, end = -Infinity;
    for (let g = s.groupFrom; g < s.groupTo; g++) {
      start = Math.min(start, gStart[g]);
      end = Math.max(end, gEnd[g]);
    }
    if (!Number.isFinite(start)) start = end = lastEnd; // produced no sound (e.g. a symbol flite skips)
    lastEnd = end;
    const charStart = tokens[s.tokenFrom].start, charEnd = tokens[s.tokenTo - 1].end;
    words.push({
      text: text.slice(charStart, charEnd),
      start_ms: ms(start),
      duration_ms: Math.max(0, ms(end) - ms(start)),
      char_start: charStart,
      char_end: charEnd,
    });
  }
  return { words, phonemes };
}
