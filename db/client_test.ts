import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { DatabaseClosedError, openDatabase } from "./client.ts";
import { openTestDatabase, testDatabaseUrl } from "./testing.ts";
import { tenants } from "./schema.ts";
import { configureLogging } from "../lib/log.ts";

configureLogging({ level: "error" });

Deno.test({
  name: "pglite data dir: migrations idempotent on reopen, lock file blocks a second opener",
  // PGlite only: the PostgreSQL pass would run the same embedded database again.
  ignore: testDatabaseUrl() !== undefined,
}, async () => {
  const dir = await Deno.makeTempDir();
  const dataDir = `${dir}/nested/pglite`;
  const a = await openDatabase({ dataDir });
  assert.equal(a.kind, "pglite");
  assert.ok(await a.migrationsApplied());
  await a.db.insert(tenants).values({ name: "t1" });
  await assert.rejects(() => openDatabase({ dataDir }), /in use by process/);
  await a.close();
  await a.close(); // idempotent
  assert.equal(a.state, "closed");
  await assert.rejects(() => a.query(sql`select 1`), DatabaseClosedError);
  const b = await openDatabase({ dataDir });
  assert.ok(await b.migrationsApplied());
  const rows = await b.db.select().from(tenants);
  assert.equal(rows.length, 1);
  await b.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name: "a stale lock file (dead pid) is taken over",
  // PGlite only: the PostgreSQL pass would run the same embedded database again.
  ignore: testDatabaseUrl() !== undefined,
}, async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/pglite.lock`, "999999");
  const d = await openDatabase({ dataDir: `${dir}/pglite` });
  await d.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("test database: listen/notify round trip, query shape", async () => {
  const d = await openTestDatabase();
  const got: string[] = [];
  const unlisten = await d.listen("parley_test", (p) => got.push(p));
  await d.notify("parley_test", "hello");
  for (let i = 0; i < 100 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(got, ["hello"]);
  const rows = await d.query<{ n: number }>(sql`select 41 + 1 as n`);
  assert.equal(Number(rows[0].n), 42);
  await unlisten();
  await d.close();
});
