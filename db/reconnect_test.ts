/**
 * After a database outage the pool reconnects within about a second of the server being back, however many
 * connection attempts failed meanwhile: postgres.js's default backoff would wait up to 20 s, long enough for a
 * node to miss NODE_TIMEOUT_MS and have its sessions closed as lost. A private cluster (.ci/pg.sh) is stopped,
 * queried until its reconnects have failed for 12 s, and started again. PostgreSQL pass only (the PGlite pass
 * has no server to stop).
 */
import assert from "node:assert/strict";
import { openDatabase, reconnectBackoff } from "./client.ts";
import { privatePostgres, testDatabaseUrl } from "./testing.ts";
import { sql } from "drizzle-orm";
import { freePort } from "../tests/e2e/stack_process.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("postgres pool: reconnect backoff is capped at 1 s and grows from 25-50 ms", () => {
  for (let n = 0; n < 40; n++) {
    const s = reconnectBackoff(n);
    assert.ok(s > 0 && s <= 1, `${n}: ${s}`);
  }
  assert.ok(reconnectBackoff(0) <= 0.05);
});

Deno.test({
  name:
    "postgres pool: a query works again within 2 s of the server being ready after 12 s of failed reconnects",
  ignore: !testDatabaseUrl(),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "parley-reconnect-pg-" });
    const port = freePort();
    const url = await privatePostgres("start", dir, port);
    // One connection, so its next attempt is exactly one backoff after the failure that ends the outage below.
    const db = await openDatabase({ url, poolSize: 1 });
    try {
      await db.query(sql`select 1`);
      await privatePostgres("stop", dir, port);
      // Queries one after another: each fails when the connection's next attempt is refused. After 12 s the
      // failure count is where postgres.js's default backoff waits 10-20 s; the server comes back right after
      // a failure, so the next attempt is one backoff away.
      const down = performance.now();
      let failures = 0;
      while (true) {
        const failed = await db.query(sql`select 1`).then(() => false, () => true);
        if (failed) failures++;
        if (failed && performance.now() - down > 12_000) break;
      }
      assert.ok(failures >= 5, `${failures} failed reconnects during the outage`);
      await privatePostgres("start", dir, port); // returns once the server accepts connections
      const started = performance.now();
      let reconnectedMs = -1;
      while (performance.now() - started < 25_000) {
        if (await db.query(sql`select 1`).then(() => true, () => false)) {
          reconnectedMs = performance.now() - started;
          break;
        }
        await sleep(20);
      }
      assert.ok(
        reconnectedMs >= 0 && reconnectedMs < 2000,
        `first query ${
          Math.round(reconnectedMs)
        } ms after the server was ready (${failures} failures before)`,
      );
    } finally {
      await db.close();
      await privatePostgres("stop", dir, port).catch(() => "");
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
