/**
 * Claim throughput of the TTS chunk scheduler on real PostgreSQL (issue #6: ≥ 1500 claims/s with 2 workers).
 *
 * Two claimers, each on its own connection (as two origins would be), claim as fast as they can from 30 queued
 * jobs × 200 chunks. Reported side by side, in one run:
 *   - claim only: the fair order (the default), FIFO order, and a plain `SKIP LOCKED` queue claim without any
 *     ordering work ("baseline": what the machine allows for a one-row claim);
 *   - the fair claim with a durable commit (`durable: true`), to show what the asynchronous claim commit buys;
 *   - the full cycle of a worker: claim + result write (the result keeps its durable commit);
 *   - a `select 1` round trip for reference.
 * After every run: how many chunks were claimed twice (must be 0).
 *
 *   DATABASE_URL=postgres://… deno task bench tts_claims
 */
import { createBenchDatabase } from "./bench_db.ts";
import { sql } from "drizzle-orm";
import { type Database, openDatabase } from "../db/client.ts";
import { createTenant } from "../db/api_keys.ts";
import {
  type ChunkLease,
  claimChunk,
  type ClaimOrder,
  endJob,
  submitJobs,
  writeResult,
} from "../db/tts_jobs.ts";
import { configureLogging } from "../lib/log.ts";

configureLogging({ level: "error" });
const JOBS = 30;
const CHUNKS = 200;
const WINDOW_MS = 8_000;
const loadavg = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
const loadBefore = loadavg();

const benchDb = await createBenchDatabase("parley_bench_claims");
const url = benchDb.url;
const db = await openDatabase({ url, poolSize: 2 });
const tenant = (await createTenant(db, "bench")).id;
const results: Array<[string, string]> = [];
const row = (k: string, v: string) => {
  results.push([k, v]);
  console.error(`${k}: ${v}`);
};

type Claimed = ChunkLease;
/** A plain queue claim: no fairness, no job row update. */
async function baselineClaim(c: Database, nodeId: string): Promise<Claimed | null> {
  const rows = await c.query<{ job_id: string; idx: number; attempts: number }>(sql`
    update tts_chunks set status = 'running', attempts = attempts + 1, claimed_by = ${nodeId},
      lease_until = now() + interval '30 seconds'
    where (job_id, idx) = (select job_id, idx from tts_chunks where status = 'queued'
      order by job_id, idx limit 1 for update skip locked)
    returning job_id, idx, attempts, set_config('synchronous_commit', 'off', true)`);
  const r = rows[0];
  return r ? { jobId: String(r.job_id), idx: Number(r.idx), attempt: Number(r.attempts) } : null;
}

async function fill(): Promise<void> {
  const rows = await db.query<{ id: string }>(
    sql`select id from tts_jobs where status in ('queued', 'running')`,
  );
  for (const r of rows) await endJob(db, r.id, "canceled", null);
  await db.query(sql`delete from tts_jobs`);
  await submitJobs(
    db,
    Array.from({ length: JOBS }, (_, k) => ({
      tenantId: tenant,
      text: `job ${k}`,
      voice: "en-us",
      engine: "espeak",
      format: "wav",
      priority: k % 3 ? "batch" as const : "interactive" as const,
      sampleRate: 22050,
      chunks: Array.from({ length: CHUNKS }, (_, i) => `chunk ${k}.${i} of a benchmark job.`),
    })),
  );
  await db.query(sql`vacuum analyze tts_chunks`);
  await db.query(sql`vacuum analyze tts_jobs`);
}

async function run(
  label: string,
  claim: (c: Database, nodeId: string) => Promise<Claimed | null>,
  withResult: boolean,
): Promise<void> {
  await fill();
  const claimers = await Promise.all([0, 1].map(() => openDatabase({ url, migrate: false, poolSize: 1 })));
  const pcm = new Uint8Array(64);
  const lat: number[] = [];
  const t0 = performance.now();
  const counts = await Promise.all(claimers.map(async (c, w) => {
    let n = 0;
    while (performance.now() - t0 < WINDOW_MS) {
      const s = performance.now();
      const ch = await claim(c, `claimer-${w}`);
      if (!ch) break;
      lat.push(performance.now() - s);
      if (withResult) await writeResult(c, ch, { pcm, audioMs: 1, sampleRate: 22050 });
      n++;
    }
    return n;
  }));
  const s = (performance.now() - t0) / 1000;
  const total = counts.reduce((a, b) => a + b, 0);
  const dup = await db.query<{ n: number }>(
    sql`select count(*)::int as n from tts_chunks where attempts > 1`,
  );
  lat.sort((a, b) => a - b);
  const p = (q: number) => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))].toFixed(2);
  row(
    label,
    `${(total / s).toFixed(0)} /s (${total} chunks in ${s.toFixed(1)} s; claim p50 ${p(0.5)} ms, p99 ${
      p(0.99)
    } ms; claimed twice: ${dup[0].n})`,
  );
  await Promise.all(claimers.map((c) => c.close()));
}

try {
  const fair = (order: ClaimOrder, durable = false) => (c: Database, nodeId: string) =>
    claimChunk(c, { nodeId, leaseMs: 30_000, order, durable });
  await run("claims/s, 2 claimers, claim only (fair)", fair("fair"), false);
  await run("claims/s, 2 claimers, claim only (fifo)", fair("fifo"), false);
  await run("claims/s, 2 claimers, claim only (baseline: plain SKIP LOCKED)", baselineClaim, false);
  await run("claims/s, 2 claimers, claim only (fair, durable commit)", fair("fair", true), false);
  await run("chunks/s, 2 claimers, claim + result write (fair)", fair("fair"), true);
  const t = performance.now();
  for (let i = 0; i < 200; i++) await db.query(sql`select 1`);
  row("reference: one `select 1` round trip", `${((performance.now() - t) / 200).toFixed(2)} ms`);
  const fsync = await db.query<{ s: string }>(sql`select setting as s from pg_settings where name = 'fsync'`);
  row("server fsync setting", fsync[0].s);
} finally {
  await db.close();
  await benchDb.drop();
}

const w = Math.max(...results.map(([k]) => k.length));
console.log(
  `\nTTS claim benchmark (${new Date().toISOString()}, ${navigator.hardwareConcurrency} cores, PostgreSQL; ` +
    `${JOBS} jobs × ${CHUNKS} chunks; load average ${loadBefore} at start, ${loadavg()} at end)`,
);
console.log(`${"measure".padEnd(w)} | result`);
console.log(`${"-".repeat(w)} | ${"-".repeat(40)}`);
for (const [k, v] of results) console.log(`${k.padEnd(w)} | ${v}`);
Deno.exit(0);
