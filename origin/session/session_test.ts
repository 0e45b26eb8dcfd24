/**
 * Runs the wrtc session cases (session_cases.ts) in a child `deno run` process. The child ends with an explicit
 * Deno.exit after closing everything: a process that had connected wrtc peers segfaults on a natural exit
 * (see wrtc.ts), which would otherwise turn a green run into exit code 139. The child's per-test lines are
 * inherited into this output; a failing case makes the child exit 1.
 */
import assert from "node:assert/strict";

Deno.test("wrtc session cases (child process, explicit exit)", async () => {
  const cases = new URL("./session_cases.ts", import.meta.url).pathname;
  const { code, signal } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cases],
    stdout: "inherit",
    stderr: "inherit",
    signal: AbortSignal.timeout(240_000),
  }).output();
  assert.equal(signal, null, `child killed by ${signal}`);
  assert.equal(code, 0, `session cases failed (exit ${code})`);
});
