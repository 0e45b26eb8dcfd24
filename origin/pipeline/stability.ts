/**
 * LocalAgreement-2 stability policy for streaming partials: a word prefix on which two consecutive hypotheses
 * agree becomes stable and is never retracted for this segment; the rest is unstable. Comparisons ignore case and
 * punctuation. The displayed text is always `stable + unstable`, so partials grow instead of flickering.
 */
export interface StableSplit {
  text: string;
  stable: string;
  unstable: string;
}

const norm = (w: string) => w.toLowerCase().replace(/[^\p{L}\p{N}']/gu, "");

export class LocalAgreement {
  private committed: string[] = [];
  private prev: string[] | null = null;

  update(hypothesis: string): StableSplit {
    const words = hypothesis.trim().split(/\s+/).filter(Boolean);
    if (this.prev) {
      let n = 0;
      while (n < words.length && n < this.prev.length && norm(words[n]) === norm(this.prev[n])) n++;
      if (n > this.committed.length) {
        // keep what is already committed, extend it with the newly agreed words
        this.committed = [...this.committed, ...words.slice(this.committed.length, n)];
      }
    }
    this.prev = words;
    const rest = words.slice(this.committed.length);
    return split(this.committed, rest);
  }

  /** Words committed so far. */
  get stableWords(): readonly string[] {
    return this.committed;
  }

  reset(): void {
    this.committed = [];
    this.prev = null;
  }
}

function split(stableWords: string[], rest: string[]): StableSplit {
  const stable = stableWords.join(" ");
  const unstable = (stable && rest.length ? " " : "") + rest.join(" ");
  return { text: stable + unstable, stable, unstable };
}
