/**
 * Job worker mechanics on a real database: lease renewal while a slow chunk synthesizes, release on close,
 * prompt close with idle slots, NOTIFY wake-up, and the live-priority gate. The synthesizer here is a timed
 * stand-in (mechanics only; tests/tts_api_test.ts and tests/tts_multiprocess_test.ts use the real engine).
 */
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { createTenant } from "../../db/api_keys.ts";
import { openTestDatabase, testJob } from "../../db/testing.ts";
import { reclaimExpired, submitJobs } from "../../db/tts_jobs.ts";
import { PriorityGate } from "./priority_gate.ts";
import type { ChunkSynthesizer, ChunkTrim } from "./synth.ts";
import { chunkText } from "../../protocol/tts_text.ts";
import { JOIN_PAUSE_MS, START_PAUSE_MS } from "../tts/trim_edges.ts";
import { TtsJobWorker } from "./worker.ts";
import { DatabaseUnavailableError } from "../../db/unavailable.ts";
import { configureLogging } from "../../lib/log.ts";

class SlowSynth implements ChunkSynthesizer {
  started = 0;
  constructor(private readonly ms: number) {}
  async synthesize() {
    this.started++;
    await new Promise((r) => setTimeout(r, this.ms));
    return { pcm: new Uint8Array(200), sampleRate: 22050, audioMs: 100 / 22.05 };
  }
  ready() {
    return true;
  }
  close() {
    return Promise.resolve();
  }
}

const newJob = testJob;

async function until(cond: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error("condition not reached");
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test({
  name: "tts worker: lease renewed during slow synthesis, NOTIFY wake-up, release on close, gate",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const db = await openTestDatabase();
    const tenant = (await createTenant(db, "w")).id;
    const synth = new SlowSynth(1500);
    const gate = new PriorityGate();
    const worker = await TtsJobWorker.start(db, {
      nodeId: "w1",
      concurrency: 1,
      leaseMs: 600, // the synthesis takes 2.5 leases: only renewal keeps the chunk
      pollMs: 60_000, // no poll: work must arrive by NOTIFY
      order: "fair",
      maxAttempts: 3,
      synth,
      gate,
    });
    try {
      const t0 = Date.now();
      const [{ job }] = await submitJobs(db, [newJob(tenant, ["a.", "b."])]);
      await until(() => Promise.resolve(synth.started === 1));
      assert.ok(Date.now() - t0 < 1000, "woken by NOTIFY, not the (60 s) poll");
      await new Promise((r) => setTimeout(r, 1000));
      const r = await reclaimExpired(db, 3);
      assert.equal(r.requeued, 0, "the renewed lease did not expire");
      await until(async () => {
        const rows = await db.query<{ n: number }>(
          sql`select chunks_done as n from tts_jobs where id = ${job.id}`,
        );
        return Number(rows[0].n) === 1;
      });
      // live work pending → the worker does not start the next chunk
      const endLive = gate.live();
      const startedBefore = synth.started;
      await new Promise((r) => setTimeout(r, 2000));
      assert.ok(synth.started <= startedBefore + 1, "at most the chunk already past the gate");
      const paused = synth.started;
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(synth.started, paused, "no new chunk while live work is pending");
      endLive();
      await submitJobs(db, [newJob(tenant, ["c.", "d.", "e."])]);
      await until(() => Promise.resolve(synth.started > paused));
      // close while holding a chunk: it goes back to the queue at once (attempt not counted), promptly
      const t1 = Date.now();
      await worker.close();
      assert.ok(Date.now() - t1 < 3000, `close took ${Date.now() - t1} ms`);
      const running = await db.query(sql`select 1 from tts_chunks where status = 'running'`);
      assert.equal(running.length, 0, "nothing left leased by the closed worker");
      const queued = await db.query<{ attempts: number }>(sql`select attempts from tts_chunks
        where status = 'queued' order by job_id, idx`);
      assert.ok(queued.length >= 1);
      const jobsQueued = await db.query<{ n: number }>(
        sql`select sum(chunks_queued)::int as n from tts_jobs`,
      );
      assert.equal(Number(jobsQueued[0].n), queued.length, "chunks_queued counters match the rows");
    } finally {
      await worker.close();
      await db.close();
    }
  },
});

Deno.test({
  name:
    "tts worker: pauses at cuts inside a sentence are trimmed; an interactive job's first chunk is kept as PCM",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const db = await openTestDatabase();
    const tenant = (await createTenant(db, "t")).id;
    const seen = new Map<string, ChunkTrim | undefined>();
    const synth: ChunkSynthesizer = {
      synthesize(text, _voice, _engine, _rate, opts) {
        seen.set(text, opts?.trim);
        const pcm = new Int16Array(2205).map((_, i) => Math.round(3000 * Math.sin(i / 7)));
        return Promise.resolve({ pcm: new Uint8Array(pcm.buffer), sampleRate: 22050, audioMs: 100 });
      },
      ready: () => true,
      close: () => Promise.resolve(),
    };
    const worker = await TtsJobWorker.start(db, {
      nodeId: "w1",
      concurrency: 1,
      leaseMs: 5000,
      pollMs: 100,
      order: "fair",
      maxAttempts: 3,
      synth,
    });
    try {
      const text = "The quick brown fox jumps over the lazy dog today. It slept.";
      const chunks = chunkText(text);
      assert.equal(chunks.length, 2);
      const [{ job: a }] = await submitJobs(db, [newJob(tenant, chunks)]);
      const [{ job: b }] = await submitJobs(db, [newJob(tenant, chunks, { priority: "batch" })]);
      const codecs = async (id: string) =>
        (await db.query<{ codec: string }>(
          sql`select codec from tts_chunks where job_id = ${id} and status = 'done' order by idx`,
        )).map((r) => r.codec);
      await until(async () => (await codecs(a.id)).length === 2 && (await codecs(b.id)).length === 2);
      assert.deepEqual(seen.get(chunks[0]), { headMs: START_PAUSE_MS, tailMs: JOIN_PAUSE_MS.word });
      assert.deepEqual(seen.get(chunks[1]), { headMs: JOIN_PAUSE_MS.word });
      assert.deepEqual(await codecs(a.id), ["pcm", "opus"]);
      assert.deepEqual(await codecs(b.id), ["opus", "opus"], "a batch job's first chunk is compressed");
    } finally {
      await worker.close();
      await db.close();
    }
  },
});

Deno.test({
  name:
    "tts worker: the interactive slot takes an interactive chunk while batch chunks hold the others, never batch",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const db = await openTestDatabase();
    const tenant = (await createTenant(db, "i")).id;
    const started: string[] = [];
    let inFlight = 0, maxInFlight = 0;
    const synth: ChunkSynthesizer = {
      async synthesize(text) {
        started.push(text);
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        await new Promise((r) => setTimeout(r, text.startsWith("hi") ? 50 : 800));
        inFlight--;
        return { pcm: new Uint8Array(200), sampleRate: 22050, audioMs: 100 / 22.05 };
      },
      ready: () => true,
      close: () => Promise.resolve(),
    };
    const worker = await TtsJobWorker.start(db, {
      nodeId: "w1",
      concurrency: 1,
      interactiveSlots: 1,
      leaseMs: 5000,
      pollMs: 100,
      order: "fair",
      maxAttempts: 3,
      synth,
      storage: { codec: "pcm" },
    });
    try {
      await submitJobs(db, [newJob(tenant, ["b1.", "b2.", "b3."], { priority: "batch" })]);
      await until(() => Promise.resolve(started.length === 1));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(maxInFlight, 1, "the interactive slot left the batch job alone");
      const t0 = performance.now();
      const [{ job }] = await submitJobs(db, [newJob(tenant, ["hi there."])]);
      await until(async () =>
        (await db.query(sql`select 1 from tts_chunks where job_id = ${job.id} and status = 'done'`))
          .length === 1
      );
      assert.ok(performance.now() - t0 < 700, "done before the batch chunk in progress");
      assert.equal(started[1], "hi there.");
      assert.equal(maxInFlight, 2);
    } finally {
      await worker.close();
      await db.close();
    }
  },
});

Deno.test({
  name:
    "tts worker: while the database is unreachable a slot warns once, backs off, and resumes when it is back",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const real = await openTestDatabase();
    const tenant = (await createTenant(real, "outage")).id;
    let down = false;
    let failedQueries = 0;
    // The worker's database: every query fails as a lost connection would while `down` (the rest is the real one).
    const db = new Proxy(real, {
      get(target, prop) {
        if (prop === "query") {
          return (q: Parameters<typeof real.query>[0]) => {
            if (!down) return real.query(q);
            failedQueries++;
            return Promise.reject(new DatabaseUnavailableError("connect ECONNREFUSED (test outage)"));
          };
        }
        const v = Reflect.get(target, prop);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const lines: Array<{ level: string; msg: string }> = [];
    configureLogging({ level: "info", sink: (l) => lines.push(JSON.parse(l)) });
    const synth = new SlowSynth(10);
    const worker = await TtsJobWorker.start(db, {
      nodeId: "w-outage",
      concurrency: 1,
      leaseMs: 5000,
      pollMs: 50, // every slot tries to claim every 50 ms when idle
      order: "fair",
      maxAttempts: 3,
      synth,
    });
    try {
      down = true;
      await new Promise((r) => setTimeout(r, 2000));
      const during = failedQueries;
      const msgs = (level: string, re: RegExp) =>
        lines.filter((l) => l.level === level && re.test(l.msg)).length;
      assert.equal(msgs("warn", /database unreachable/), 1, JSON.stringify(lines));
      assert.equal(msgs("error", /slot error/), 0, "no error line per failed claim");
      // 250 + 500 + 1000 ms of back-off in 2 s: a handful of claims, not one per poll (40) or per 250 ms (8)
      assert.ok(during >= 2 && during <= 6, `${during} failed claims in 2 s`);
      down = false;
      await submitJobs(real, [newJob(tenant, ["back."])]);
      await until(() => Promise.resolve(synth.started >= 1), 5000);
      assert.equal(msgs("info", /database reachable again/), 1, JSON.stringify(lines.slice(-5)));
      // close() during a back-off pause returns at once, not when the pause (up to 2 s) ends
      // (failures at ~0, 0.3 and 0.8 s put the slot in a 1 s pause until ~1.8 s)
      down = true;
      await new Promise((r) => setTimeout(r, 1000));
      const t0 = performance.now();
      await worker.close();
      assert.ok(performance.now() - t0 < 300, `close took ${Math.round(performance.now() - t0)} ms`);
    } finally {
      configureLogging({ level: "error", sink: (l) => console.error(l) });
      await worker.close();
      await real.close();
    }
  },
});
