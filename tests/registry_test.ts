import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { heartbeatNode, listNodes, pickNodes, registerNode } from "../db/nodes.ts";
import { sessions } from "../db/schema.ts";
import { openTestDatabase } from "../db/testing.ts";
import { signRequest } from "../protocol/internal_auth.ts";
import { ApiError } from "../lib/errors.ts";
import type { SessionService } from "../origin/services.ts";
import { api, AUDIO_OFFER as OFFER, sleep, startStack } from "./harness.ts";

Deno.test("registry: least-loaded live node wins; stale and draining nodes are never picked", async () => {
  const d = await openTestDatabase();
  try {
    await registerNode(d, { id: "a", url: "http://127.0.0.1:1", capacity: 10, version: "t" });
    await registerNode(d, { id: "b", url: "http://127.0.0.1:2", capacity: 10, version: "t" });
    await registerNode(d, { id: "c", url: "http://127.0.0.1:3", capacity: 10, version: "t" });
    await heartbeatNode(d, "a", 5, false);
    await heartbeatNode(d, "b", 2, false);
    await heartbeatNode(d, "c", 0, true); // draining
    assert.deepEqual((await pickNodes(d, 5000)).map((n) => n.id), ["b", "a"]);
    // b stops heartbeating
    await d.query(sql`update nodes set heartbeat_at = now() - interval '10 seconds' where id = 'b'`);
    assert.deepEqual((await pickNodes(d, 5000)).map((n) => n.id), ["a"]);
    const all = await listNodes(d, 5000);
    assert.deepEqual(all.map((n) => [n.id, n.alive, n.draining]), [["a", true, false], ["b", false, false], [
      "c",
      true,
      true,
    ]]);
    // full node is skipped; sessions routed since the last heartbeat count as load
    await heartbeatNode(d, "a", 10, false);
    assert.deepEqual(await pickNodes(d, 5000), []);
    await heartbeatNode(d, "a", 8, false);
    const [t] = await d.query<{ id: string }>(sql`insert into tenants (name) values ('x') returning id`);
    await d.db.insert(sessions).values([{ tenantId: t.id, nodeId: "a" }, { tenantId: t.id, nodeId: "a" }]);
    assert.deepEqual(await pickNodes(d, 5000), []);
  } finally {
    await d.close();
  }
});

/** A session service double that accepts everything (unit-level double; the real one is tested in origin/session). */
function acceptingService(): SessionService & { created: string[] } {
  const created: string[] = [];
  return {
    created,
    create(req) {
      if (!req.sdp.includes("m=audio")) throw new ApiError(400, "bad_request", "no audio");
      created.push(req.session_id);
      return Promise.resolve({ sdp: "v=0\r\nanswer\r\n" });
    },
    get: () => null,
    say: () => Promise.resolve(null),
    end: () => Promise.resolve(null),
    load: 0,
    drain() {},
    close: () => Promise.resolve(),
  };
}

Deno.test("routing: no origin → 503 Retry-After and no row; draining/dead origins skipped; retry on unreachable", async () => {
  const s = await startStack();
  try {
    const k = await s.key(["sessions"]);
    const post = () =>
      api(s, "POST", "/v1/sessions", {
        key: k.key,
        body: OFFER,
        headers: { "content-type": "application/sdp" },
      });
    let r = await post();
    assert.equal(r.status, 503);
    assert.equal(r.headers.get("retry-after"), "2");
    assert.equal((r.body as { error: { code: string } }).error.code, "no_origin_available");
    const count = async () =>
      Number((await s.database.query<{ n: number }>(sql`select count(*)::int n from sessions`))[0].n);
    assert.equal(await count(), 0);

    // A registered origin that is unreachable (nothing listens) → edge retries on the live one.
    await registerNode(s.database, { id: "ghost", url: "http://127.0.0.1:9", capacity: 1000, version: "t" });
    const svc = acceptingService();
    const o = await s.startOrigin({ sessions: svc });
    r = await post();
    assert.equal(r.status, 201, r.text);
    assert.equal(r.headers.get("content-type"), "application/sdp");
    const loc = r.headers.get("location")!;
    assert.match(loc, /^\/v1\/sessions\/[0-9a-f-]{36}$/);
    assert.equal(svc.created.length, 1);
    const row = await api(s, "GET", loc, { key: k.key });
    assert.equal((row.body as { node_id: string }).node_id, o.nodeId);

    // JSON variant
    const j = await api(s, "POST", "/v1/sessions", {
      key: k.key,
      json: { sdp: OFFER, options: { mode: "echo" } },
    });
    assert.equal(j.status, 201);
    assert.equal((j.body as { sdp: string }).sdp, "v=0\r\nanswer\r\n");

    // Draining origin gets nothing new.
    await heartbeatNode(s.database, o.nodeId, 0, true);
    await s.database.query(sql`delete from nodes where id = 'ghost'`);
    const before = svc.created.length;
    await o.close(); // stops heartbeating and deregisters
    r = await post();
    assert.equal(r.status, 503);
    assert.equal(svc.created.length, before);
  } finally {
    await s.close();
  }
});

Deno.test("origin internal API rejects unsigned, badly signed and stale calls", async () => {
  const s = await startStack();
  try {
    const o = await s.startOrigin({ sessions: acceptingService() });
    const body = JSON.stringify({
      session_id: crypto.randomUUID(),
      tenant_id: s.tenantId,
      sdp: OFFER,
      options: {},
    });
    const url = `${o.url}/internal/sessions`;
    const unsigned = await fetch(url, { method: "POST", body });
    assert.equal(unsigned.status, 401);
    await unsigned.body?.cancel();
    const wrong = await fetch(url, {
      method: "POST",
      body,
      headers: { "x-parley-signature": await signRequest("x".repeat(40), "POST", "/internal/sessions") },
    });
    assert.equal(wrong.status, 401);
    await wrong.body?.cancel();
    const secretRow = await s.database.query<{ value: string }>(
      sql`select value from settings where key = 'internal_secret'`,
    );
    const stale = await fetch(url, {
      method: "POST",
      body,
      headers: {
        "x-parley-signature": await signRequest(
          secretRow[0].value,
          "POST",
          "/internal/sessions",
          new TextEncoder().encode(body),
          Date.now() - 120_000,
        ),
      },
    });
    assert.equal(stale.status, 401);
    await stale.body?.cancel();
  } finally {
    await s.close();
  }
});

Deno.test("sweeper: sessions on an origin that stopped heartbeating end as origin_lost; DELETE still works", async () => {
  const s = await startStack();
  try {
    const k = await s.key(["sessions"]);
    await registerNode(s.database, { id: "dying", url: "http://127.0.0.1:9", capacity: 10, version: "t" });
    const [row] = await s.database.db.insert(sessions).values({
      tenantId: k.tenantId,
      nodeId: "dying",
      state: "active",
    })
      .returning({ id: sessions.id });
    const [row2] = await s.database.db.insert(sessions).values({
      tenantId: k.tenantId,
      nodeId: "dying",
      state: "active",
    }).returning({ id: sessions.id });
    await s.database.query(
      sql`update nodes set heartbeat_at = now() - interval '1 minute' where id = 'dying'`,
    );
    await s.database.query(sql`update sessions set updated_at = now() - interval '1 minute'`);
    // The edge trusts heartbeats once it has been connected for NODE_TIMEOUT_MS + HEARTBEAT_MS.
    await sleep(1300);
    // DELETE routes through Postgres state, not edge memory: a dead origin → closed as origin_lost, 204.
    assert.equal((await api(s, "DELETE", `/v1/sessions/${row2.id}`, { key: k.key })).status, 204);
    for (let i = 0; i < 40; i++) {
      const r = await api(s, "GET", `/v1/sessions/${row.id}`, { key: k.key });
      if ((r.body as { state: string }).state === "closed") break;
      await sleep(100);
    }
    const r = await api(s, "GET", `/v1/sessions/${row.id}`, { key: k.key });
    assert.deepEqual([(r.body as { state: string }).state, (r.body as { reason: string }).reason], [
      "closed",
      "origin_lost",
    ]);
    assert.equal((await api(s, "DELETE", `/v1/sessions/${row.id}`, { key: k.key })).status, 204); // idempotent
  } finally {
    await s.close();
  }
});
