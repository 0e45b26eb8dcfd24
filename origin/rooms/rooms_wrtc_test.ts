/**
 * Runs the wrtc room cases (rooms_cases.ts) in a child `deno run` process that closes everything and exits
 * explicitly (a process that had connected wrtc peers segfaults on a natural exit; see origin/session/wrtc.ts).
 */
import assert from "node:assert/strict";

Deno.test("wrtc room cases (child process, explicit exit)", async () => {
  const cases = new URL("./rooms_cases.ts", import.meta.url).pathname;
  const { code, signal } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cases],
    stdout: "inherit",
    stderr: "inherit",
    signal: AbortSignal.timeout(240_000),
  }).output();
  assert.equal(signal, null, `child killed by ${signal}`);
  assert.equal(code, 0, `room cases failed (exit ${code})`);
});
