/**
 * CI runs the suite twice: `deno task test` on PGlite, then `deno task test:pg` against PostgreSQL. The second
 * pass is an explicit list (the files whose database use differs between the two engines), so that media tests
 * which never touch PostgreSQL do not run twice. This test keeps that list honest: every test file that selects
 * its database through the test helpers (db/testing.ts, tests/harness.ts, PARLEY_TEST_DATABASE_URL), directly or
 * through the `*_cases.ts` file it runs, is in `test:pg` or named below with the reason it is not.
 */
import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Files that use a test database but whose PostgreSQL paths another file of the PostgreSQL pass runs. */
const NOT_IN_PG_PASS: Record<string, string> = {
  "origin/session/session_test.ts":
    "wrtc session cases: the same session rows and event log queries run on PostgreSQL in tests/session_e2e_test.ts",
  "origin/call/sip_session_test.ts":
    "SIP session cases: a call's rows and events run on PostgreSQL in tests/sip_e2e_test.ts (split edge/origin case)",
};

const DB_HELPERS = new Set(["db/testing.ts", "tests/harness.ts"]);

function walk(dir: string, out: string[]): string[] {
  for (const e of Deno.readDirSync(dir)) {
    if (e.name === "node_modules" || e.name.startsWith(".") || e.name === "data") continue;
    const p = join(dir, e.name);
    if (e.isDirectory) walk(p, out);
    else if (e.name.endsWith(".ts")) out.push(relative(ROOT, p));
  }
  return out;
}

/** Does the file choose a test database itself (an import of a helper, or the environment variable)? */
function usesTestDb(file: string): boolean {
  const src = Deno.readTextFileSync(join(ROOT, file));
  if (src.includes("PARLEY_TEST_DATABASE_URL")) return true;
  for (const m of src.matchAll(/from "(\.{1,2}\/[^"]+)"/g)) {
    if (DB_HELPERS.has(relative(ROOT, resolve(ROOT, dirname(file), m[1])))) return true;
  }
  return false;
}

function pgPassPaths(): string[] {
  const cfg = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json"))) as { tasks: Record<string, string> };
  return cfg.tasks["test:pg"].split(/\s+/).filter((a) => !a.startsWith("-") && a !== "deno" && a !== "test");
}

Deno.test("test:pg lists every test file whose database the test helpers choose", () => {
  const files = walk(join(ROOT, "db"), []).concat(
    walk(join(ROOT, "origin"), []),
    walk(join(ROOT, "tests"), []),
  );
  const dbFiles = new Set(files.filter(usesTestDb));
  const tests = files.filter((f) => f.endsWith("_test.ts") && f !== "tests/pg_suite_test.ts");
  const needing = tests.filter((t) => {
    if (dbFiles.has(t)) return true;
    // A test that runs a cases file in a child process: it names that file.
    const src = Deno.readTextFileSync(join(ROOT, t));
    return [...dbFiles].some((c) => c.endsWith("_cases.ts") && src.includes(c.split("/").pop()!));
  });
  const pg = pgPassPaths();
  for (const p of pg) {
    assert.ok(files.some((f) => f === p || f.startsWith(p)), `test:pg names a missing path: ${p}`);
  }
  const missing = needing.filter((t) => !pg.some((p) => t === p || (p.endsWith("/") && t.startsWith(p))))
    .filter((t) => !(t in NOT_IN_PG_PASS));
  assert.deepEqual(missing, [], "add these to test:pg in deno.json (or to NOT_IN_PG_PASS with the reason)");
  for (const t of Object.keys(NOT_IN_PG_PASS)) {
    assert.ok(needing.includes(t), `${t} no longer uses a test database`);
  }
});
