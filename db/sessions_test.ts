import assert from "node:assert/strict";
import { eq } from "drizzle-orm";
import { withTestDatabase } from "./testing.ts";
import { sessions, tenants, transcriptSegments } from "./schema.ts";
import {
  appendEvent,
  attachSession,
  claimSession,
  eventsAfter,
  getSessionRow,
  markActive,
  markClosed,
  markClosing,
  sessionStatus,
  SessionStoreError,
} from "./sessions.ts";

Deno.test("session rows: transitions only move forward, first close reason wins, events get gap-free seq", async () => {
  await withTestDatabase(async (db) => {
    const [t] = await db.db.insert(tenants).values({ name: "t" }).returning();
    const [other] = await db.db.insert(tenants).values({ name: "o" }).returning();
    const id = crypto.randomUUID();

    // claim inserts when the edge did not; a second claim (or another tenant's) is a conflict
    const row = await claimSession(db, { id, tenantId: t.id, nodeId: "n1", mode: "echo", options: {} });
    assert.equal(row.state, "connecting");
    assert.equal(row.nodeId, "n1");
    await markActive(db, id);
    await assert.rejects(
      () => claimSession(db, { id, tenantId: t.id, nodeId: "n1", mode: "echo", options: {} }),
      (e) => e instanceof SessionStoreError && e.code === "conflict",
    );
    await assert.rejects(
      () => claimSession(db, { id, tenantId: other.id, nodeId: "n1", mode: "echo", options: {} }),
      SessionStoreError,
    );
    // an edge-created row (state connecting, node picked by the edge) is adopted
    const edgeId = crypto.randomUUID();
    await db.db.insert(sessions).values({ id: edgeId, tenantId: t.id, nodeId: "n0" });
    assert.equal(
      (await claimSession(db, { id: edgeId, tenantId: t.id, nodeId: "n2", mode: "echo", options: {} }))
        .nodeId,
      "n2",
    );

    // 50 concurrent appends: seq 1..50 with no gap or duplicate, last_seq follows
    const seqs = await Promise.all(
      Array.from({ length: 50 }, (_, i) => appendEvent(db, id, { type: "pong", id: i, server_time_ms: 0 })),
    );
    assert.deepEqual([...seqs].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i + 1));
    assert.equal((await sessionStatus(db, id))?.lastSeq, 50);

    // a confirmed transcript inserts its segment in the same transaction; a partial does not
    const tr = {
      type: "transcript" as const,
      segment_id: 3,
      alternatives: [{ text: "hello world", score: 0.9 }],
      stable_text: "hello world",
      unstable_text: "",
      start_ms: 100.4,
      end_ms: 900.6,
      latency_ms: 120,
    };
    await appendEvent(db, id, { ...tr, status: "partial" });
    const seq = await appendEvent(db, id, { ...tr, status: "confirmed" });
    const segs = await db.db.select().from(transcriptSegments).where(eq(transcriptSegments.sessionId, id));
    assert.equal(segs.length, 1);
    assert.equal(segs[0].seq, seq);
    assert.equal(segs[0].text, "hello world");
    assert.equal(segs[0].tenantId, t.id);
    assert.equal(segs[0].endMs, 901);

    // eventsAfter returns full events in seq order
    const after = await eventsAfter(db, id, 48);
    assert.deepEqual(after.map((e) => e.seq), [49, 50, 51, 52]);
    assert.equal(after[3].type, "transcript");

    // resume attach: same tenant, not closed; moves the row to the new node, keeps last_seq
    const attached = await attachSession(db, { id, tenantId: t.id, nodeId: "n3" });
    assert.equal(attached.nodeId, "n3");
    assert.equal(attached.lastSeq, 52);
    await assert.rejects(
      () => attachSession(db, { id, tenantId: other.id, nodeId: "n3" }),
      /no such session/,
    );

    // closing → closed; the first reason wins, later transitions are no-ops
    assert.equal(await markClosing(db, id, "media_timeout"), true);
    assert.equal(await markActive(db, id), false);
    assert.equal(await markClosing(db, id, "admin"), false);
    assert.equal(await markClosed(db, id, "admin"), true);
    assert.equal(await markClosed(db, id, "error"), false);
    const closed = await getSessionRow(db, id);
    assert.equal(closed?.state, "closed");
    assert.equal(closed?.reason, "media_timeout");
    assert.ok(closed?.closedAt && closed.activeAt);
    // a closed session never takes another event, and cannot be resumed
    await assert.rejects(
      () => appendEvent(db, id, { type: "pong", id: 1, server_time_ms: 0 }),
      (e) => e instanceof SessionStoreError && e.code === "closed",
    );
    await assert.rejects(
      () => attachSession(db, { id, tenantId: t.id, nodeId: "n1" }),
      (e) => e instanceof SessionStoreError && e.code === "closed",
    );
    await assert.rejects(
      () => appendEvent(db, crypto.randomUUID(), { type: "pong", id: 1, server_time_ms: 0 }),
      (e) => e instanceof SessionStoreError && e.code === "not_found",
    );
  });
});
