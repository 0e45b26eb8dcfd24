/**
 * The edge during and after a database outage, in process: the outage is simulated by making this stack's
 * database handle fail the way postgres.js does when the server is gone (ECONNREFUSED). The real thing (a
 * stopped PostgreSQL, real processes, live sessions) is tests/db_outage_e2e_test.ts.
 */
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { registerNode } from "../db/nodes.ts";
import { sessions } from "../db/schema.ts";
import { historyRoutes } from "../edge/routes/history.ts";
import { ttsRoutes } from "../edge/routes/tts.ts";
import { api, sleep, startStack } from "./harness.ts";

function connectionRefused(): Error {
  return Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
}

/** Switch a Database's reachability: while down, raw queries and drizzle builders reject like postgres.js. */
function outageSwitch(database: Database): { down: boolean } {
  const state = { down: false };
  const realQuery = database.query.bind(database);
  const realDb = database.db;
  // A drizzle builder double: every call chains, awaiting it rejects.
  const failing: unknown = new Proxy(function () {}, {
    get: (_t, k) =>
      k === "then" ? (_ok: unknown, fail: (e: unknown) => void) => fail(connectionRefused()) : failing,
    apply: () => failing,
  });
  Object.defineProperty(database, "query", {
    value: (q: Parameters<Database["query"]>[0]) =>
      state.down ? Promise.reject(connectionRefused()) : realQuery(q),
  });
  Object.defineProperty(database, "db", { get: () => state.down ? failing : realDb });
  return state;
}

Deno.test("edge outage: a node with a stale heartbeat after an outage is not swept; its own heartbeat wins", async () => {
  // The node timeout only has to leave room for `survivor`'s first heartbeat after the outage (1.1 s below) on a
  // loaded machine; every wait in this test is a multiple of it.
  const s = await startStack({ config: { HEARTBEAT_MS: "200", NODE_TIMEOUT_MS: "4000" } });
  const outage = outageSwitch(s.database);
  try {
    const k = await s.key(["sessions"]);
    await registerNode(s.database, { id: "survivor", url: "http://127.0.0.1:9", capacity: 10, version: "t" });
    await registerNode(s.database, { id: "dead", url: "http://127.0.0.1:9", capacity: 10, version: "t" });
    const insert = async (nodeId: string) =>
      (await s.database.db.insert(sessions).values({ tenantId: k.tenantId, nodeId, state: "active" })
        .returning({ id: sessions.id }))[0].id;
    const survivor = await insert("survivor");
    const dead = await insert("dead");
    await sleep(4500); // the edge now trusts heartbeats
    // Outage: nobody can heartbeat; both heartbeats end up older than the node timeout.
    outage.down = true;
    await sleep(1500);
    outage.down = false;
    await s.database.query(sql`update nodes set heartbeat_at = now() - interval '1 minute'`);
    await s.database.query(sql`update sessions set updated_at = now() - interval '1 minute'`);
    // The outage is over; `survivor` heartbeats again once it has reconnected (a little over a sweeper period
    // here), `dead` never does.
    await sleep(1100);
    await s.database.query(sql`update nodes set heartbeat_at = now() where id = 'survivor'`);
    const beat = setInterval(() => {
      s.database.query(sql`update nodes set heartbeat_at = now() where id = 'survivor'`).catch(() => {});
    }, 200);
    try {
      const state = async (
        id: string,
      ) => ((await api(s, "GET", `/v1/sessions/${id}`, { key: k.key })).body as {
        state: string;
        reason: string;
      });
      // Long enough for several sweeper ticks after the outage, and for the edge to trust heartbeats again.
      const t0 = performance.now();
      while ((await state(dead)).state !== "closed" && performance.now() - t0 < 30_000) await sleep(100);
      assert.deepEqual(await state(dead), { ...(await state(dead)), state: "closed", reason: "origin_lost" });
      assert.equal(
        (await state(survivor)).state,
        "active",
        "a node that heartbeats after the outage keeps its sessions",
      );
    } finally {
      clearInterval(beat);
    }
  } finally {
    outage.down = false;
    await s.close();
  }
});

Deno.test("edge outage: API answers 503 + Retry-After + JSON during the outage; DELETE never 204s unreached", async () => {
  const s = await startStack({ routes: [historyRoutes, ttsRoutes] });
  const outage = outageSwitch(s.database);
  try {
    const k = await s.key(["sessions", "transcripts:read", "tts"]);
    await registerNode(s.database, {
      id: "unreachable",
      url: "http://127.0.0.1:9",
      capacity: 10,
      version: "t",
    });
    const [row] = await s.database.db.insert(sessions).values({
      tenantId: k.tenantId,
      nodeId: "unreachable",
      state: "active",
    }).returning({ id: sessions.id });

    outage.down = true;
    for (
      const [method, path] of [
        ["GET", `/v1/sessions/${row.id}`],
        ["DELETE", `/v1/sessions/${row.id}`],
        ["GET", "/v1/sessions"],
        ["GET", "/v1/tts/jobs"],
        ["POST", "/v1/tokens"],
      ]
    ) {
      const r = await api(s, method, path, { key: k.key, ...(method === "POST" ? { json: {} } : {}) });
      assert.equal(r.status, 503, `${method} ${path}: ${r.status} ${r.text}`);
      assert.equal(r.headers.get("retry-after"), "5");
      assert.equal((r.body as { error: { code: string } }).error.code, "unavailable");
    }
    outage.down = false;

    // The database is back, but this edge cannot yet tell a dead origin from one that could not heartbeat:
    // its heartbeat is stale and it cannot be reached → 503, and the session is NOT marked ended.
    await s.database.query(sql`update nodes set heartbeat_at = now() - interval '1 minute'`);
    const early = await api(s, "DELETE", `/v1/sessions/${row.id}`, { key: k.key });
    assert.equal(early.status, 503, early.text);
    assert.ok(early.headers.get("retry-after"));
    const still = await api(s, "GET", `/v1/sessions/${row.id}`, { key: k.key });
    assert.equal((still.body as { state: string }).state, "active");
    // An origin whose heartbeat is fresh but which cannot be reached is not declared lost either.
    await s.database.query(sql`update nodes set heartbeat_at = now()`);
    await sleep(1300);
    await s.database.query(sql`update nodes set heartbeat_at = now()`);
    const fresh = await api(s, "DELETE", `/v1/sessions/${row.id}`, { key: k.key });
    assert.equal(fresh.status, 503, fresh.text);
    // Once the edge has been connected longer than the node timeout and the origin still is silent: it is gone.
    await s.database.query(sql`update nodes set heartbeat_at = now() - interval '1 minute'`);
    const late = await api(s, "DELETE", `/v1/sessions/${row.id}`, { key: k.key });
    assert.equal(late.status, 204, late.text);
    const gone = await api(s, "GET", `/v1/sessions/${row.id}`, { key: k.key });
    assert.deepEqual([(gone.body as { state: string }).state, (gone.body as { reason: string }).reason], [
      "closed",
      "origin_lost",
    ]);
  } finally {
    outage.down = false;
    await s.close();
  }
});
