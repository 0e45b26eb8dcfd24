/**
 * The PocketSphinx settings the config validates before any engine loads: the search preset names and
 * `SPHINX_ARGS` (origin/asr/sphinx/sphinx_detect.ts turns both into decoder arguments).
 */
export const SPHINX_SEARCHES = ["live", "full"] as const;
export type SphinxSearch = typeof SPHINX_SEARCHES[number];

/**
 * `SPHINX_ARGS` as decoder arguments: whitespace-separated `-name value` pairs. Throws a RangeError naming the
 * first bad token (PocketSphinx itself then checks names and values when a decoder is built).
 */
export function parseSphinxArgs(text: string | undefined): string[] {
  const tokens = (text ?? "").trim().split(/\s+/).filter((t) => t.length > 0);
  if (tokens.length % 2 !== 0) {
    throw new RangeError(`SPHINX_ARGS must be "-name value" pairs, got ${tokens.length} words`);
  }
  for (let i = 0; i < tokens.length; i += 2) {
    if (!/^-[a-z_][a-z0-9_]*$/i.test(tokens[i])) {
      throw new RangeError(`SPHINX_ARGS: "${tokens[i]}" is not an option name (-name value pairs)`);
    }
  }
  return tokens;
}
