/**
 * PostgreSQL outages (10 s and 25 s) while 3 sessions talk, through real edge and origin processes on a private
 * PostgreSQL cluster this test starts and stops itself (tests/e2e/db_outage_cases.ts). Part of the PostgreSQL
 * pass (`PARLEY_TEST_DATABASE_URL` set, as in `.ci/run`): the PGlite pass has no server to stop.
 */
import assert from "node:assert/strict";
import { testDatabaseUrl } from "../db/testing.ts";

Deno.test({
  name: "PostgreSQL outages of 10 s and 25 s: no session closed, no event lost (PostgreSQL)",
  ignore: !testDatabaseUrl(),
  fn: async () => {
    const { code, signal } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--unstable-worker-options",
        new URL("./e2e/db_outage_cases.ts", import.meta.url).pathname,
      ],
      stdout: "inherit",
      stderr: "inherit",
      signal: AbortSignal.timeout(420_000),
    }).output();
    assert.equal(signal, null);
    assert.equal(code, 0, "database outage cases failed");
  },
});
