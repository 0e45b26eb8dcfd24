/**
 * The runner of wrtc test cases. A `deno test` process that had connected wrtc peers segfaults (exit 139) when
 * it ends, and `Deno.exit` inside a test is reported as a failure, so wrtc cases live in plain scripts: the
 * script registers cases with `test()`, runs them with `runCases()` (which closes what the script asks, then
 * exits 1 if a case failed), and a `*_test.ts` file runs the script as a child with `runCasesInChild()`.
 */
import assert from "node:assert/strict";

export interface WrtcCase {
  name: string;
  fn: () => Promise<void>;
}

/** A case list and its `test(name, fn)` registrar. */
export function caseList(): { cases: WrtcCase[]; test: (name: string, fn: () => Promise<void>) => void } {
  const cases: WrtcCase[] = [];
  return { cases, test: (name, fn) => void cases.push({ name, fn }) };
}

/** Run the cases whose name contains one of `filters` (all when none), then `cleanup`, then exit. */
export async function runCases(
  label: string,
  cases: WrtcCase[],
  filters: string[],
  cleanup: () => Promise<void> = () => Promise.resolve(),
): Promise<never> {
  let failures = 0, ran = 0;
  const t0 = performance.now();
  for (const c of cases) {
    if (filters.length && !filters.some((f) => c.name.includes(f))) continue;
    ran++;
    const t = performance.now();
    try {
      await c.fn();
      console.log(`${c.name} ... ok (${Math.round(performance.now() - t)} ms)`);
    } catch (err) {
      failures++;
      console.log(`${c.name} ... FAILED (${Math.round(performance.now() - t)} ms)`);
      console.log(err instanceof Error ? err.stack : err);
    }
  }
  await cleanup();
  console.log(
    `${label}: ${ran - failures} passed, ${failures} failed (${Math.round(performance.now() - t0)} ms)`,
  );
  await new Promise((r) => setTimeout(r, 50));
  Deno.exit(failures ? 1 : 0);
}

/** From a `deno test` file: run a cases script as a child process; fail unless it exits 0. */
export async function runCasesInChild(script: URL, timeoutMs = 240_000): Promise<void> {
  const { code, signal } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script.pathname],
    stdout: "inherit",
    stderr: "inherit",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  assert.equal(signal, null, `child killed by ${signal}`);
  assert.equal(code, 0, `${script.pathname} failed (exit ${code})`);
}
