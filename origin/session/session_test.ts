/**
 * Runs the wrtc session cases (session_cases.ts) in a child `deno run` process. The child ends with an explicit
 * Deno.exit after closing everything: a process that had connected wrtc peers segfaults on a natural exit
 * (see wrtc.ts), which would otherwise turn a green run into exit code 139. The child's per-test lines are
 * inherited into this output; a failing case makes the child exit 1.
 */
import { runCasesInChild } from "./wrtc_cases.ts";

Deno.test("wrtc session cases (child process, explicit exit)", async () => {
  await runCasesInChild(new URL("./session_cases.ts", import.meta.url));
});
