/**
 * Runs tests/session_outage_cases.ts (a live wrtc session through a database outage) in a child process, the
 * way origin/session/session_test.ts runs its cases (see origin/session/wrtc_cases.ts for why).
 */
import { runCasesInChild } from "../origin/session/wrtc_cases.ts";

Deno.test("session through a database outage (child process, explicit exit)", async () => {
  await runCasesInChild(new URL("./session_outage_cases.ts", import.meta.url));
});
