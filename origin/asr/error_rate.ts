/** Levenshtein distance over tokens (characters or words): the numerator of CER and WER. */
export function editDistance<T>(a: readonly T[], b: readonly T[]): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/** Word error rate of a hypothesis against a reference (space-separated words). */
export function wordErrorRate(ref: string, hyp: string): number {
  const r = ref.split(" ").filter(Boolean);
  return editDistance(r, hyp.split(" ").filter(Boolean)) / Math.max(1, r.length);
}
