/**
 * Split text into sentences for incremental synthesis, keeping character offsets into the original text
 * (telop char ranges refer to the full utterance text). Long sentences are split at commas/semicolons past
 * `maxChars` so the first chunk starts playing early.
 */
export function splitSentences(text: string, maxChars = 200): Array<{ text: string; offset: number }> {
  const out: Array<{ text: string; offset: number }> = [];
  const re = /[^.!?。！？\n]+(?:[.!?。！？]+["'”’)\]]*|\n|$)/g;
  for (const m of text.matchAll(re)) {
    let s = m[0];
    let off = m.index!;
    while (s.length > maxChars) {
      const cut = Math.max(
        s.lastIndexOf(",", maxChars),
        s.lastIndexOf(";", maxChars),
        s.lastIndexOf(" ", maxChars),
      );
      const at = cut > maxChars / 3 ? cut + 1 : maxChars;
      pushTrimmed(out, s.slice(0, at), off);
      s = s.slice(at);
      off += at;
    }
    pushTrimmed(out, s, off);
  }
  return out;
}

function pushTrimmed(out: Array<{ text: string; offset: number }>, s: string, off: number): void {
  const lead = s.length - s.trimStart().length;
  const t = s.trim();
  if (t) out.push({ text: t, offset: off + lead });
}
