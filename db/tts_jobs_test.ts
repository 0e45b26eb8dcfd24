/**
 * The scheduler's SQL on a real database (PGlite by default; PostgreSQL with PARLEY_TEST_DATABASE_URL).
 */
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { createTenant } from "./api_keys.ts";
import type { Database } from "./client.ts";
import { testJob, withTestDatabase } from "./testing.ts";
import {
  claimChunk,
  type ClaimOrder,
  completeInterruptedSubmits,
  doneAudioBytes,
  doneChunks,
  endJob,
  extendLease,
  failChunk,
  getJob,
  listJobs,
  type NewJob,
  reclaimExpired,
  releaseChunk,
  SPLIT_SUBMIT_MIN_CHUNKS,
  storedAudioBytes,
  submitJobs,
  sweepJobAudio,
  writeResult,
} from "./tts_jobs.ts";

const job = testJob;

const pcm = (n: number) => new Uint8Array(n).map((_, i) => i & 0xff);

async function withDb(fn: (db: Database, tenant: string) => Promise<void>): Promise<void> {
  await withTestDatabase(async (db) => {
    const t = await createTenant(db, "t");
    await fn(db, t.id);
  });
}

async function drainOrder(db: Database, order: ClaimOrder, n: number): Promise<string[]> {
  const got: string[] = [];
  for (let i = 0; i < n; i++) {
    const c = await claimChunk(db, { nodeId: "n1", leaseMs: 30_000, order });
    if (!c) break;
    got.push(`${c.text}`);
    const w = await writeResult(db, c, { pcm: pcm(4), audioMs: 100, sampleRate: 22050 });
    assert.ok(w.accepted);
  }
  return got;
}

Deno.test("tts db: submit is idempotent per (tenant, key); different text is a conflict", async () => {
  await withDb(async (db, tenant) => {
    const [a] = await submitJobs(db, [job(tenant, ["one.", "two."], { idempotencyKey: "k1" })]);
    const [b] = await submitJobs(db, [job(tenant, ["one.", "two."], { idempotencyKey: "k1" })]);
    assert.equal(a.created, true);
    assert.equal(b.created, false);
    assert.equal(a.job.id, b.job.id);
    const n = await db.query<{ n: number }>(sql`select count(*)::int as n from tts_chunks`);
    assert.equal(Number(n[0].n), 2, "no duplicate chunks");
    await assert.rejects(
      submitJobs(db, [job(tenant, ["other."], { idempotencyKey: "k1" })]),
      /different text/,
    );
    const other = await createTenant(db, "u");
    const [c] = await submitJobs(db, [job(other.id, ["one.", "two."], { idempotencyKey: "k1" })]);
    assert.equal(c.created, true, "keys are per tenant");
    assert.equal(a.job.chunks_total, 2);
    assert.equal(a.job.chars_total, 8);
  });
});

Deno.test("tts db: fair order — first chunks first, least-served job next; fifo is submit order", async () => {
  for (const order of ["fair", "fifo"] as const) {
    await withDb(async (db, tenant) => {
      await submitJobs(db, [job(tenant, ["L0", "L1", "L2", "L3", "L4"])]);
      await submitJobs(db, [job(tenant, ["M0", "M1", "M2"])]);
      // the long job has been served a little before the short one arrives
      const first = await drainOrder(db, order, 3);
      await submitJobs(db, [job(tenant, ["S0"])]);
      const rest = await drainOrder(db, order, 20);
      const all = [...first, ...rest];
      if (order === "fifo") {
        assert.deepEqual(all, ["L0", "L1", "L2", "L3", "L4", "M0", "M1", "M2", "S0"]);
      } else {
        // L0, M0 (first chunks), then L1 vs M1: equal service → older job; S0 jumps ahead of all later chunks.
        assert.deepEqual(all.slice(0, 3), ["L0", "M0", "L1"]);
        assert.equal(all[3], "S0", `short job's chunk next, got ${all.join(",")}`);
        assert.deepEqual(all.slice(4), ["M1", "L2", "M2", "L3", "L4"]);
      }
    });
  }
});

Deno.test("tts db: interactive outranks batch; tenants share fairly", async () => {
  await withDb(async (db, tenantA) => {
    const tenantB = (await createTenant(db, "b")).id;
    // tenant A: 3 jobs; tenant B: 1 job; a batch job from B
    for (let k = 0; k < 3; k++) await submitJobs(db, [job(tenantA, [`A${k}-0`, `A${k}-1`, `A${k}-2`])]);
    await submitJobs(db, [job(tenantB, ["B-0", "B-1", "B-2", "B-3"])]);
    await submitJobs(db, [job(tenantB, ["Z-0"], { priority: "batch" })]);
    const all = await drainOrder(db, "fair", 30);
    assert.equal(all[all.length - 1], "Z-0", "batch last");
    // after first chunks, tenant B (one job) gets about as much as tenant A (three jobs)
    const later = all.slice(4, 10);
    const bShare = later.filter((x) => x.startsWith("B")).length;
    assert.ok(bShare >= 3, `tenant B got ${bShare}/6 of the next claims: ${later.join(",")}`);
  });
});

Deno.test("tts db: a long interactive job loses interactive rank after N characters; batch gets 1 claim in K", async () => {
  await withDb(async (db, tenant) => {
    const long = Array.from({ length: 20 }, (_, i) => `L${String(i).padStart(2, "0")}-${"x".repeat(96)}`);
    await submitJobs(db, [job(tenant, long)]);
    await submitJobs(db, [job(tenant, ["b1"], { priority: "batch" })]);
    await submitJobs(db, [job(tenant, ["b2"], { priority: "batch" })]);
    const claim = async (share: { interactiveChars?: number; batchFirst?: boolean }) => {
      const c = (await claimChunk(db, { nodeId: "n1", leaseMs: 30_000, share }))!;
      assert.ok((await writeResult(db, c, { pcm: pcm(4), audioMs: 100, sampleRate: 22050 })).accepted);
      return c.text.slice(0, 3);
    };
    // strict priority (the old order): the whole interactive job first
    const strict: string[] = [];
    for (let i = 0; i < 3; i++) strict.push(await claim({}));
    assert.deepEqual(strict, ["L00", "L01", "L02"]);
    // with a 300-char interactive rank the job (≥ 300 chars claimed) now competes as batch: unserved batch first
    assert.equal(await claim({ interactiveChars: 300 }), "b1");
    // batch-first turn: batch ahead of interactive whatever their service
    await submitJobs(db, [job(tenant, ["i1"])]);
    await submitJobs(db, [job(tenant, ["b3"], { priority: "batch" })]);
    assert.equal(await claim({ interactiveChars: 300, batchFirst: true }), "b2");
    assert.equal(await claim({ interactiveChars: 300 }), "i1");
    assert.equal(await claim({ interactiveChars: 300 }), "b3");
    assert.equal(await claim({ interactiveChars: 300 }), "L03");
  });
});

Deno.test("tts db: result write is exactly-once; progress, timings and status", async () => {
  await withDb(async (db, tenant) => {
    const [{ job: j }] = await submitJobs(db, [job(tenant, ["a b c.", "d e."])]);
    const c0 = (await claimChunk(db, { nodeId: "n1", leaseMs: 30_000 }))!;
    assert.equal(c0.idx, 0);
    let s = (await getJob(db, tenant, j.id))!;
    assert.equal(s.status, "running");
    assert.ok(s.started_at && !s.first_audio_at);
    const r = { pcm: pcm(10), audioMs: 250, sampleRate: 22050 };
    assert.equal((await writeResult(db, c0, r)).accepted, true);
    assert.equal((await writeResult(db, c0, r)).accepted, false, "second write refused");
    assert.equal((await writeResult(db, { ...c0, attempt: 99 }, r)).accepted, false, "wrong token refused");
    s = (await getJob(db, tenant, j.id))!;
    assert.equal(s.chunks_done, 1);
    assert.equal(s.audio_ms, 250);
    assert.ok(s.first_audio_at);
    const c1 = (await claimChunk(db, { nodeId: "n1", leaseMs: 30_000 }))!;
    assert.equal((await writeResult(db, c1, r)).jobStatus, "succeeded");
    s = (await getJob(db, tenant, j.id))!;
    assert.equal(s.status, "succeeded");
    assert.equal(s.chunks_done, 2);
    assert.equal(s.chunks_queued, 0);
    assert.ok(s.finished_at! >= s.first_audio_at! && s.first_audio_at! >= s.started_at!);
    assert.equal(await claimChunk(db, { nodeId: "n1", leaseMs: 30_000 }), null);
    const bytes = await db.query<{ pcm: Uint8Array }>(sql`select pcm from tts_chunks where idx = 0`);
    assert.deepEqual(new Uint8Array(bytes[0].pcm), r.pcm, "bytea round trip");
  });
});

/** The job's chunk rows, as `idx:status`, in order. */
async function chunkRows(db: Database, jobId: string): Promise<string[]> {
  const rows = await db.query<{ idx: number; status: string }>(
    sql`select idx, status from tts_chunks where job_id = ${jobId} order by idx`,
  );
  return rows.map((r) => `${r.idx}:${r.status}`);
}

Deno.test("tts db: a long job is submitted in two statements and ends up whole and claimable in order", async () => {
  await withDb(async (db, tenant) => {
    const n = SPLIT_SUBMIT_MIN_CHUNKS + 4;
    const chunks = Array.from({ length: n }, (_, i) => `sentence number ${i}.`);
    const [{ job: j, created }] = await submitJobs(db, [job(tenant, chunks)]);
    assert.equal(created, true);
    assert.equal(j.chunks_total, n);
    assert.equal(j.chunks_queued, n, "the returned row counts the second statement's chunks");
    const s = (await getJob(db, tenant, j.id))!;
    assert.equal(s.chunks_queued, n);
    assert.equal((await chunkRows(db, j.id)).length, n);
    const got = await drainOrder(db, "fair", n + 1);
    assert.deepEqual(got, chunks, "every chunk once, in order");
    assert.equal((await getJob(db, tenant, j.id))!.status, "succeeded");
    // a short job (below the threshold) is still one statement with all its rows
    const [{ job: k }] = await submitJobs(db, [job(tenant, ["one.", "two."])]);
    assert.deepEqual(await chunkRows(db, k.id), ["0:queued", "1:queued"]);
  });
});

Deno.test("tts db: an interrupted long submit is finished by the sweep, once, and never for canceled jobs", async () => {
  await withDb(async (db, tenant) => {
    const n = SPLIT_SUBMIT_MIN_CHUNKS + 2;
    const chunks = Array.from({ length: n }, (_, i) => `part ${i} of the text.`);
    const split = (text: string) => text.split(/(?<=\.) /);
    // What the first statement alone leaves behind: the job row and its first chunk.
    const interrupted = async (over: Partial<NewJob> = {}) => {
      const [{ job: j }] = await submitJobs(db, [job(tenant, chunks, over)]);
      await db.query(sql`delete from tts_chunks where job_id = ${j.id} and idx > 0`);
      await db.query(sql`update tts_jobs set chunks_queued = 1 where id = ${j.id}`);
      return j.id;
    };
    const a = await interrupted();
    const c0 = (await claimChunk(db, { nodeId: "n1", leaseMs: 30_000 }))!;
    assert.equal(c0.jobId, a);
    assert.equal((await writeResult(db, c0, { pcm: pcm(4), audioMs: 10, sampleRate: 22050 })).accepted, true);
    assert.equal((await getJob(db, tenant, a))!.status, "running", "not done with 1 of n chunks");
    assert.deepEqual(
      await completeInterruptedSubmits(db, split, 60_000),
      { completed: [], failed: [] },
      "too young",
    );
    assert.deepEqual(await completeInterruptedSubmits(db, split, 0), { completed: [a], failed: [] });
    assert.deepEqual(await completeInterruptedSubmits(db, split, 0), { completed: [], failed: [] }, "once");
    const rows = await chunkRows(db, a);
    assert.equal(rows.length, n);
    assert.equal(rows[0], "0:done", "the finished first chunk is kept");
    assert.equal((await getJob(db, tenant, a))!.chunks_queued, n - 1);
    const got = await drainOrder(db, "fair", n);
    assert.deepEqual(got, chunks.slice(1));
    assert.equal((await getJob(db, tenant, a))!.status, "succeeded");

    // canceled in between: left alone
    const b = await interrupted({ idempotencyKey: "b" });
    await endJob(db, b, "canceled", null);
    assert.deepEqual(await completeInterruptedSubmits(db, split, 0), { completed: [], failed: [] });
    assert.deepEqual(await chunkRows(db, b), ["0:canceled"]);

    // the splitter no longer agrees with the stored first chunk: the job fails instead of speaking wrong text
    const c = await interrupted({ idempotencyKey: "c" });
    assert.deepEqual(await completeInterruptedSubmits(db, (t) => split(t).reverse(), 0), {
      completed: [],
      failed: [c],
    });
    assert.equal((await getJob(db, tenant, c))!.status, "failed");
  });
});

Deno.test("tts db: expired leases are reclaimed and redone; the stale holder's write is refused", async () => {
  await withDb(async (db, tenant) => {
    const [{ job: j }] = await submitJobs(db, [job(tenant, ["x.", "y."])]);
    const stale = (await claimChunk(db, { nodeId: "dead", leaseMs: 1 }))!;
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(
      await extendLease(db, stale, 30_000),
      true,
      "an expired but unreclaimed lease can be extended",
    );
    await db.query(sql`update tts_chunks set lease_until = now() - interval '1 second'`);
    const rec = await reclaimExpired(db, 3);
    assert.equal(rec.requeued, 1);
    assert.equal(await extendLease(db, stale, 30_000), false);
    const again = (await claimChunk(db, { nodeId: "alive", leaseMs: 30_000 }))!;
    assert.equal(again.idx, stale.idx, "the reclaimed chunk is claimed again first");
    assert.equal(again.attempt, 2);
    const r = { pcm: pcm(4), audioMs: 10, sampleRate: 22050 };
    assert.equal((await writeResult(db, stale, r)).accepted, false);
    assert.equal((await writeResult(db, again, r)).accepted, true);
    const s = (await getJob(db, tenant, j.id))!;
    assert.equal(s.chunks_done, 1);
    assert.equal(s.chunks_queued, 1);
  });
});

Deno.test("tts db: a chunk whose lease keeps expiring fails its job; synthesis errors retry then fail", async () => {
  await withDb(async (db, tenant) => {
    const [{ job: j }] = await submitJobs(db, [job(tenant, ["p.", "q."])]);
    for (let k = 0; k < 2; k++) {
      assert.ok(await claimChunk(db, { nodeId: "n", leaseMs: 30_000 }));
      await db.query(sql`update tts_chunks set lease_until = now() - interval '1 second' where idx = 0`);
      await reclaimExpired(db, 2);
    }
    const s = (await getJob(db, tenant, j.id))!;
    assert.equal(s.status, "failed");
    assert.match(s.error!, /lease expired/);
    assert.ok(s.finished_at);
    assert.equal(await claimChunk(db, { nodeId: "n", leaseMs: 30_000 }), null);

    const [{ job: k }] = await submitJobs(db, [job(tenant, ["r."])]);
    let c = (await claimChunk(db, { nodeId: "n", leaseMs: 30_000 }))!;
    assert.equal(await failChunk(db, c, "boom", 2), "requeued");
    c = (await claimChunk(db, { nodeId: "n", leaseMs: 30_000 }))!;
    assert.equal(await failChunk(db, c, "boom", 2), "job_failed");
    const t = (await getJob(db, tenant, k.id))!;
    assert.equal(t.status, "failed");
    assert.match(t.error!, /boom/);
  });
});

Deno.test("tts db: cancel stops scheduling, refuses in-flight results, is per tenant", async () => {
  await withDb(async (db, tenant) => {
    const [{ job: j }] = await submitJobs(db, [job(tenant, ["1.", "2.", "3."])]);
    const held = (await claimChunk(db, { nodeId: "n", leaseMs: 30_000 }))!;
    const other = await createTenant(db, "x");
    assert.equal(await endJob(db, j.id, "canceled", null, other.id), null, "another tenant cannot cancel");
    const after = (await endJob(db, j.id, "canceled", null, tenant))!;
    assert.equal(after.status, "canceled");
    assert.equal(after.chunks_queued, 0);
    assert.equal(await claimChunk(db, { nodeId: "n", leaseMs: 30_000 }), null);
    assert.equal(
      (await writeResult(db, held, { pcm: pcm(2), audioMs: 1, sampleRate: 22050 })).accepted,
      false,
    );
    assert.equal(await extendLease(db, held, 1000), false);
    assert.equal(await releaseChunk(db, held), false);
    const again = (await endJob(db, j.id, "canceled", null, tenant))!;
    assert.equal(again.finished_at, after.finished_at, "idempotent");
    assert.equal((await getJob(db, tenant, j.id))!.status, "canceled");
  });
});

Deno.test("tts db: keyset listing, newest first, by status", async () => {
  await withDb(async (db, tenant) => {
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await submitJobs(db, [job(tenant, [`j${i}.`])]))[0].job.id);
    await endJob(db, ids[2], "canceled", null, tenant);
    const seen: string[] = [];
    let cursor: { micros: string; id: string } | undefined;
    for (let page = 0; page < 10; page++) {
      const r = await listJobs(db, tenant, { limit: 3, cursor });
      seen.push(...r.jobs.map((j) => j.id));
      if (!r.nextCursor) break;
      const [micros, id] = r.nextCursor.split("_");
      cursor = { micros, id };
    }
    assert.deepEqual(seen, [...ids].reverse());
    const canceled = await listJobs(db, tenant, { limit: 10, status: "canceled" });
    assert.deepEqual(canceled.jobs.map((j) => j.id), [ids[2]]);
    const other = await createTenant(db, "o");
    assert.equal((await listJobs(db, other.id, { limit: 10 })).jobs.length, 0);
  });
});

Deno.test("tts db: concurrent claimers never double-claim", async () => {
  await withDb(async (db, tenant) => {
    for (let k = 0; k < 5; k++) {
      await submitJobs(db, [job(tenant, Array.from({ length: 20 }, (_, i) => `c${k}-${i}`))]);
    }
    const seen = new Map<string, number>();
    await Promise.all([0, 1, 2, 3].map(async (w) => {
      while (true) {
        const c = await claimChunk(db, { nodeId: `w${w}`, leaseMs: 30_000 });
        if (!c) return;
        const key = `${c.jobId}:${c.idx}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
        assert.ok((await writeResult(db, c, { pcm: pcm(2), audioMs: 1, sampleRate: 22050 })).accepted);
      }
    }));
    assert.equal(seen.size, 100);
    assert.ok([...seen.values()].every((n) => n === 1));
    const jobs = await db.query<{ n: number }>(sql`select count(*)::int as n from tts_jobs
      where status = 'succeeded' and chunks_done = chunks_total and chunks_queued = 0`);
    assert.equal(Number(jobs[0].n), 5);
  });
});

Deno.test("tts db: the asynchronous claim (and split-submit) commit stays local to its own transaction", async () => {
  await withDb(async (db, tenant) => {
    await submitJobs(db, [job(tenant, ["one.", "two."])]);
    // a long job's first submit statement also commits asynchronously (its second one is durable)
    const long = Array.from({ length: SPLIT_SUBMIT_MIN_CHUNKS }, (_, i) => `part ${i}.`);
    const [{ job: lj }] = await submitJobs(db, [job(tenant, long, { idempotencyKey: "long" })]);
    assert.equal(lj.chunks_queued, long.length);
    // set_config(..., is_local = true) inside the claim statement: after it, every connection still commits
    // durably (on PostgreSQL the pool's other connections are checked too, as the loop below cycles through it)
    const c = await claimChunk(db, { nodeId: "n1", leaseMs: 30_000 });
    assert.ok(c);
    const durable = await claimChunk(db, { nodeId: "n1", leaseMs: 30_000, durable: true });
    assert.ok(durable);
    for (let i = 0; i < 10; i++) {
      const [r] = await db.query<{ v: string }>(sql`select current_setting('synchronous_commit') as v`);
      assert.equal(r.v, "on", "the result write after a claim must keep the durable commit");
    }
    assert.ok((await writeResult(db, c, { pcm: pcm(4), audioMs: 100, sampleRate: 22050 })).accepted);
  });
});

Deno.test("tts db: job audio retention deletes ended jobs older than N days with their chunks, nothing else", async () => {
  await withDb(async (db, tenant) => {
    const [old] = await submitJobs(db, [job(tenant, ["old one.", "old two."])]);
    const [recent] = await submitJobs(db, [job(tenant, ["recent."])]);
    const [live] = await submitJobs(db, [job(tenant, ["still queued."])]);
    await endJob(db, old.job.id, "canceled", null);
    await endJob(db, recent.job.id, "canceled", null);
    await db.query(sql`update tts_jobs set finished_at = now() - interval '8 days' where id = ${old.job.id}`);
    await db.query(sql`update tts_jobs set queued_at = now() - interval '30 days' where id = ${live.job.id}`);
    assert.equal(await sweepJobAudio(db, 0), 0, "0 keeps forever");
    assert.equal(await sweepJobAudio(db, 7), 1);
    const left = await db.query<{ id: string }>(sql`select id::text as id from tts_jobs order by queued_at`);
    assert.deepEqual(left.map((r) => r.id).sort(), [recent.job.id, live.job.id].sort());
    const chunks = await db.query<{ n: number }>(
      sql`select count(*)::int as n from tts_chunks where job_id = ${old.job.id}`,
    );
    assert.equal(Number(chunks[0].n), 0, "chunks go with the job");
    assert.equal(await sweepJobAudio(db, 7), 0, "idempotent");
  });
});

Deno.test("tts db: chunks stored as PCM and as Opus side by side: codec, sample count, decoded length, bytes", async () => {
  await withDb(async (db, tenant) => {
    const [{ job: j }] = await submitJobs(db, [job(tenant, ["one.", "two.", "three."])]);
    const c0 = (await claimChunk(db, { nodeId: "n1", leaseMs: 30_000 }))!;
    await writeResult(db, c0, { pcm: pcm(1000), audioMs: 23, sampleRate: 22050 }); // PCM: 500 samples
    const c1 = (await claimChunk(db, { nodeId: "n1", leaseMs: 30_000 }))!;
    const opus = pcm(120); // stands in for Ogg Opus bytes of 4410 samples
    await writeResult(db, c1, { pcm: opus, audioMs: 200, sampleRate: 22050, codec: "opus", samples: 4410 });
    const c2 = (await claimChunk(db, { nodeId: "n1", leaseMs: 30_000 }))!;
    await assert.rejects(
      writeResult(db, c2, { pcm: opus, audioMs: 1, sampleRate: 22050, codec: "opus" }),
      /sample count/,
    );
    await writeResult(db, c2, { pcm: pcm(200), audioMs: 5, sampleRate: 22050 });
    // A row from before the codec column: default codec, no sample count.
    await db.query(sql`update tts_chunks set samples = null where job_id = ${j.id} and idx = 2`);
    const done = await doneChunks(db, j.id, 0, { withAudio: false, limit: 10 });
    assert.deepEqual(done.map((c) => [c.idx, c.codec, c.samples]), [[0, "pcm", 500], [1, "opus", 4410], [
      2,
      "pcm",
      100,
    ]]);
    assert.equal(await doneAudioBytes(db, j.id), 1000 + 4410 * 2 + 200, "the decoded PCM's size");
    const stored = await storedAudioBytes(db, j.id);
    assert.deepEqual(stored.map((s) => [s.codec, s.bytes]), [["opus", 120], ["pcm", 1200]]);
    assert.ok(Math.abs(stored[0].seconds - 0.2) < 1e-9);
  });
});
