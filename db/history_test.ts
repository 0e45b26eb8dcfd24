import assert from "node:assert/strict";
import { withTestDatabase } from "./testing.ts";
import { sessions, tenants, transcriptSegments } from "./schema.ts";
import { searchSegments, transcriptPage, transcriptPageJson } from "./history.ts";

Deno.test("transcriptPageJson renders exactly the rows of transcriptPage, with next-page facts", async () => {
  await withTestDatabase(async (db) => {
    const [t] = await db.db.insert(tenants).values({ name: "t" }).returning();
    const id = crypto.randomUUID();
    await db.db.insert(sessions).values({ id, tenantId: t.id, nodeId: "n" });
    // seq with gaps (events between confirmed results), odd text, alternatives, a null latency
    await db.db.insert(transcriptSegments).values(Array.from({ length: 23 }, (_, i) => ({
      sessionId: id,
      tenantId: t.id,
      segmentId: i + 1,
      seq: 3 * i + 2,
      text: i === 4 ? 'quote " backslash \\ emoji 🎙 ünïcode\nnewline' : `segment ${i}`,
      alternatives: i % 2 ? [{ text: `alt ${i}`, score: -1.5 }] : [],
      startMs: i * 1000,
      endMs: i * 1000 + 900,
      latencyMs: i === 7 ? null : 100 + i,
    })));

    for (const [after, limit] of [[0, 5], [0, 23], [0, 50], [14, 5], [59, 5], [65, 3], [66, 3], [1000, 5]]) {
      const rows = await transcriptPage(db, id, after, limit + 1);
      const page = await transcriptPageJson(db, id, after, limit);
      const expected = rows.slice(0, limit);
      assert.deepEqual(JSON.parse(page.json), expected, `after ${after}, limit ${limit}`);
      assert.equal(page.count, expected.length);
      assert.equal(page.more, rows.length > limit, `more, after ${after}, limit ${limit}`);
      assert.equal(page.lastSeq, expected.length ? expected[expected.length - 1].seq : null);
    }
    // another session's rows never leak in
    const empty = await transcriptPageJson(db, crypto.randomUUID(), 0, 10);
    assert.deepEqual(empty, { json: "[]", count: 0, lastSeq: null, more: false });
  });
});

Deno.test("searchSegments: a common word ranks the newest candidates (walk), a rare one falls back to the index", async () => {
  await withTestDatabase(async (db) => {
    const [t] = await db.db.insert(tenants).values({ name: "t" }).returning();
    const [other] = await db.db.insert(tenants).values({ name: "o" }).returning();
    const id = crypto.randomUUID();
    const otherId = crypto.randomUUID();
    await db.db.insert(sessions).values([{ id, tenantId: t.id, nodeId: "n" }, {
      id: otherId,
      tenantId: other.id,
      nodeId: "n",
    }]);
    const t0 = Date.parse("2026-01-01T00:00:00Z");
    // 30 segments, oldest first: "alpha" in all of them (twice in the 3 oldest: they rank highest), "beta" only
    // in the two oldest, so a walk over the newest 10 finds no beta at all
    await db.db.insert(transcriptSegments).values(Array.from({ length: 30 }, (_, i) => ({
      sessionId: id,
      tenantId: t.id,
      segmentId: i + 1,
      seq: i + 1,
      text: `${i < 3 ? "alpha alpha" : "alpha"} segment number ${i}${i < 2 ? " beta" : ""}`,
      startMs: i * 1000,
      endMs: i * 1000 + 900,
      createdAt: new Date(t0 + i * 1000).toISOString(),
    })));
    // the other tenant's segments match too, and must never appear (both passes are tenant-scoped)
    await db.db.insert(transcriptSegments).values(Array.from({ length: 12 }, (_, i) => ({
      sessionId: otherId,
      tenantId: other.id,
      segmentId: i + 1,
      seq: i + 1,
      text: "alpha alpha alpha beta beta",
      startMs: 0,
      endMs: 900,
      createdAt: new Date(t0 + 100_000 + i).toISOString(),
    })));

    // exact ranking when the candidate set holds every match: the three "alpha alpha" rows first
    const all = await searchSegments(db, { tenantId: t.id, q: "alpha", limit: 30 });
    assert.equal(all.length, 30);
    assert.deepEqual(all.slice(0, 3).map((h) => h.seq).sort(), [1, 2, 3]);

    // candidates 5, walk 10: the walk finds 5 matches among the newest rows, so only those are ranked
    const recent = await searchSegments(db, {
      tenantId: t.id,
      q: "alpha",
      limit: 30,
      candidates: 5,
      recentWalk: 10,
    });
    assert.deepEqual(recent.map((h) => h.seq).sort((a, b) => a - b), [26, 27, 28, 29, 30]);

    // a rare word: the walk over the newest 10 finds nothing, the index pass finds both old rows
    const rare = await searchSegments(db, {
      tenantId: t.id,
      q: "beta",
      limit: 30,
      candidates: 5,
      recentWalk: 10,
    });
    assert.deepEqual(rare.map((h) => h.seq).sort((a, b) => a - b), [1, 2]);
    assert.ok(rare.every((h) => h.session_id === id));

    // time range and session filters apply in both passes
    const ranged = await searchSegments(db, {
      tenantId: t.id,
      q: "alpha",
      limit: 30,
      candidates: 5,
      recentWalk: 10,
      to: new Date(t0 + 10_000).toISOString(),
    });
    assert.deepEqual(ranged.map((h) => h.seq).sort((a, b) => a - b), [6, 7, 8, 9, 10]);
    assert.equal(
      (await searchSegments(db, { tenantId: t.id, q: "alpha", limit: 30, onlySessionId: otherId })).length,
      0,
    );
  });
});
