/**
 * An origin restarted under the same NODE_ID (after kill -9 its sessions were never closed) settles what its
 * previous process left open, before it serves, and touches nothing else: not another node's sessions, not a
 * supervised predecessor's (`<base>.<generation>` ids), not a `connecting` row an edge may be routing right now.
 */
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { registerNode } from "../db/nodes.ts";
import { sessions } from "../db/schema.ts";
import { startStack } from "./harness.ts";

Deno.test("origin restart under the same NODE_ID: the previous process's sessions end as origin_lost", async () => {
  const s = await startStack();
  try {
    const k = await s.key(["sessions"]);
    // The previous process of node `n1` (dead now) and a still-draining supervised generation `n1.0`.
    await registerNode(s.database, { id: "n1", url: "http://127.0.0.1:9", capacity: 10, version: "t" });
    await registerNode(s.database, { id: "n1.0", url: "http://127.0.0.1:9", capacity: 10, version: "t" });
    const row = async (nodeId: string, state: string, touchedAgo = "0 seconds") => {
      const [r] = await s.database.db.insert(sessions).values({ tenantId: k.tenantId, nodeId, state })
        .returning({ id: sessions.id });
      await s.database.query(
        sql`update sessions set updated_at = now() - ${touchedAgo}::interval where id = ${r.id}`,
      );
      return r.id;
    };
    const active = await row("n1", "active");
    const closing = await row("n1", "closing");
    await s.database.query(sql`update sessions set reason = 'client_hangup' where id = ${closing}`);
    const staleConnecting = await row("n1", "connecting", "10 minutes");
    const inFlight = await row("n1", "connecting"); // an edge may be POSTing it here right now
    const predecessor = await row("n1.0", "active");
    const otherNode = await row("n2", "active");

    const origin = await s.startOrigin(undefined, { NODE_ID: "n1" });
    const state = async (id: string) => {
      const [r] = await s.database.query<{ state: string; reason: string | null }>(
        sql`select state, reason from sessions where id = ${id}`,
      );
      return [r.state, r.reason];
    };
    assert.deepEqual(await state(active), ["closed", "origin_lost"]);
    assert.deepEqual(await state(closing), ["closed", "client_hangup"], "the first reason wins");
    assert.deepEqual(await state(staleConnecting), ["closed", "origin_lost"]);
    assert.deepEqual(await state(inFlight), ["connecting", null]);
    assert.deepEqual(await state(predecessor), ["active", null]);
    assert.deepEqual(await state(otherNode), ["active", null]);
    assert.equal(origin.nodeId, "n1");

    // The next supervised generation never settles its predecessor's sessions.
    await s.startOrigin(undefined, { NODE_ID: "n1.1" });
    assert.deepEqual(await state(predecessor), ["active", null]);
  } finally {
    await s.close();
  }
});
