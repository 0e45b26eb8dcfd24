/**
 * Runs the wrtc room cases (rooms_cases.ts) in a child `deno run` process that closes everything and exits
 * explicitly (a process that had connected wrtc peers segfaults on a natural exit; see origin/session/wrtc.ts).
 */
import { runCasesInChild } from "../session/wrtc_cases.ts";

Deno.test("wrtc room cases (child process, explicit exit)", async () => {
  await runCasesInChild(new URL("./rooms_cases.ts", import.meta.url));
});
