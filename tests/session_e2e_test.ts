/**
 * Sessions through real edge + origin processes with real wrtc client peers (tests/e2e/session_cases.ts, run as
 * a child script that exits explicitly — see that file).
 */
import assert from "node:assert/strict";

Deno.test("sessions end to end through edge and origin processes", async () => {
  const { code, signal } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-worker-options",
      new URL("./e2e/session_cases.ts", import.meta.url).pathname,
    ],
    stdout: "inherit",
    stderr: "inherit",
    signal: AbortSignal.timeout(300_000),
  }).output();
  assert.equal(signal, null);
  assert.equal(code, 0, "session e2e cases failed");
});
