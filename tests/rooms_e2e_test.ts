/** Rooms end to end (tests/e2e/rooms_cases.ts) in a child process that exits explicitly (wrtc). */
import { runCasesInChild } from "../origin/session/wrtc_cases.ts";

Deno.test("rooms e2e cases (child process, explicit exit)", async () => {
  await runCasesInChild(new URL("./e2e/rooms_cases.ts", import.meta.url), 600_000);
});
