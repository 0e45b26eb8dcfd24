/** Runs the phone-call session cases (sip_session_cases.ts) in a child process that ends with an explicit exit. */
import { runCasesInChild } from "../session/wrtc_cases.ts";

Deno.test("sip session cases (child process, explicit exit)", async () => {
  await runCasesInChild(new URL("./sip_session_cases.ts", import.meta.url), 400_000);
});
