/**
 * Every SQL statement of the TTS job system: submit (job + chunks in one transaction, idempotent), the fair claim
 * (one statement, FOR UPDATE SKIP LOCKED), leases (extend, reclaim after expiry), the idempotent result write,
 * failure, cancel, status, keyset listing and audio reads. Portable SQL: PostgreSQL 15 and PGlite (18).
 *
 * Lock order is chunk rows before job rows (result, reclaim, cancel, fail), so concurrent statements never
 * deadlock. The claim is the exception (job row, then chunk), safe because it never waits: both its locks are
 * taken with SKIP LOCKED. Counters on the job row (`chunks_queued`, `chars_claimed`, `chunks_done`…) change in
 * the same statement or transaction as the chunk rows they count.
 *
 * Channels: `parley_tts_work` (payload '') wakes origins' job workers when chunks become claimable;
 * `parley_tts_job` (payload = job id) wakes edges streaming that job's audio or events.
 */
import { type SQL, sql } from "drizzle-orm";
import { type Database, rowsOf } from "./client.ts";
import type { TtsFormat, TtsJobEngine, TtsJobStatus, TtsPriority } from "../protocol/tts.ts";

export const WORK_CHANNEL = "parley_tts_work";
export const JOB_CHANNEL = "parley_tts_job";

/** Claim order: `fair` (the scheduler) or `fifo` (job submit order; the benchmark's contrast). */
export type ClaimOrder = "fair" | "fifo";

export type JobStatus = TtsJobStatus;

export interface JobRow {
  id: string;
  tenant_id: string;
  batch_id: string | null;
  idempotency_key: string | null;
  voice: string;
  engine: TtsJobEngine;
  format: TtsFormat;
  priority: TtsPriority;
  status: JobStatus;
  chunks_total: number;
  chunks_done: number;
  chunks_queued: number;
  chars_total: number;
  chars_done: number;
  audio_ms: number;
  sample_rate: number;
  speed: number;
  ssml: boolean;
  error: string | null;
  queued_at: string;
  started_at: string | null;
  first_audio_at: string | null;
  finished_at: string | null;
}

export interface NewJob {
  tenantId: string;
  apiKeyId?: string | null;
  batchId?: string | null;
  idempotencyKey?: string | null;
  text: string;
  voice: string;
  engine: TtsJobEngine;
  format: TtsFormat;
  priority: TtsPriority;
  sampleRate: number;
  /** Speaking rate (default 1). */
  speed?: number;
  /** `text` is SSML and `chunks` are safe regenerated SSML. */
  ssml?: boolean;
  chunks: string[];
}

/** A held chunk: only the holder of the current attempt may extend, write, fail or release it. */
export interface ChunkLease {
  jobId: string;
  idx: number;
  /** Lease token: a result or lease extension must present it. */
  attempt: number;
}

export interface ClaimedChunk extends ChunkLease {
  text: string;
  voice: string;
  engine: TtsJobEngine;
  sampleRate: number;
  speed: number;
  ssml: boolean;
  tenantId: string;
  chunksTotal: number;
  priority: TtsPriority;
  /** The text of the chunk before this one (null for the first): tells whether this one starts mid-sentence. */
  prevText: string | null;
}

/** ISO-8601 UTC with milliseconds, identical on both drivers. */
const iso = (col: SQL) => sql`to_char(${col} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

const JOB_COLUMNS =
  sql`j.id, j.tenant_id, j.batch_id, j.idempotency_key, j.voice, j.engine, j.format, j.priority,
  j.status, j.chunks_total, j.chunks_done, j.chunks_queued, j.chars_total, j.chars_done, j.audio_ms::float8 as audio_ms,
  j.sample_rate, j.speed::float8 as speed, j.ssml, j.error, ${iso(sql`j.queued_at`)} as queued_at, ${
    iso(sql`j.started_at`)
  } as started_at,
  ${iso(sql`j.first_audio_at`)} as first_audio_at, ${iso(sql`j.finished_at`)} as finished_at`;

function normJob(r: Record<string, unknown>): JobRow {
  for (const k of ["chunks_total", "chunks_done", "chunks_queued", "chars_total", "chars_done", "audio_ms"]) {
    r[k] = Number(r[k]);
  }
  r.sample_rate = Number(r.sample_rate);
  return r as unknown as JobRow;
}

const chars = (s: string) => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

export class IdempotencyConflictError extends Error {
  override name = "IdempotencyConflictError";
}

/**
 * A single job with at least this many chunks is submitted in two statements (see `submitJobs`). Below it the
 * chunk rows cost less than the second round trip would.
 */
export const SPLIT_SUBMIT_MIN_CHUNKS = 16;

/**
 * Insert jobs with their chunks and wake the workers (NOTIFY is delivered at commit). A job whose (tenant,
 * idempotency key) already exists is returned as it is (`created: false`) and nothing is inserted for it; if
 * its text differs, IdempotencyConflictError.
 *
 * A single job is one statement (job row + chunks + NOTIFY, one round trip), except a long one
 * (≥ SPLIT_SUBMIT_MIN_CHUNKS chunks): its first statement commits the job row with only its first chunk, so a
 * worker can claim that chunk at once, and a second statement adds the rest. Inserting a book's chunk rows
 * all before the job was visible made most of the gap between a book's and a greeting's first audio
 * (docs/tts-jobs.md). If the second statement never runs (the edge died in between), the job
 * stays visibly incomplete and `completeInterruptedSubmits` (run by the origins' sweep) finishes it. A batch
 * keeps all its jobs in one transaction.
 */
export async function submitJobs(
  database: Database,
  jobs: NewJob[],
): Promise<Array<{ job: JobRow; created: boolean }>> {
  if (jobs.length === 1) {
    const j = jobs[0];
    const split = j.chunks.length >= SPLIT_SUBMIT_MIN_CHUNKS;
    const query = database.query.bind(database);
    const r = await submitOne(query, j, split ? 1 : j.chunks.length, split);
    if (split && r.created) {
      const added = await insertChunks(query, r.job.id, j.chunks, 1);
      r.job.chunks_queued += added;
    }
    return [r];
  }
  return await database.db.transaction(async (tx) => {
    const q = async <T>(stmt: SQL) => rowsOf<T>(await tx.execute(stmt));
    const out: Array<{ job: JobRow; created: boolean }> = [];
    for (const j of jobs) out.push(await submitOne(q, j, j.chunks.length, false));
    return out;
  });
}

type Query = <T>(q: SQL) => Promise<T[]>;

/** tts_chunks.priority_class of a job's priority: interactive chunks (0) rank before batch ones (1). */
const priorityClassOf = (priority: SQL) => sql`case when ${priority} = 'interactive' then 0 else 1 end`;

/**
 * Job row + its first `withChunks` chunks + NOTIFY, one statement; or the existing job of the same key.
 * `asyncCommit` (the first statement of a split submit): don't wait for the WAL flush, so the first chunk is
 * claimable sooner. Durability is unchanged for what the client is told: the second statement commits
 * synchronously before the submit returns, and that flush covers this statement's WAL too. If the server
 * crashes in between, the client got no 202 and retries (same Idempotency-Key, same job if it survived).
 */
async function submitOne(
  query: Query,
  j: NewJob,
  withChunks: number,
  asyncCommit: boolean,
): Promise<{ job: JobRow; created: boolean }> {
  const charsTotal = j.chunks.reduce((s, c) => s + chars(c), 0);
  const head = j.chunks.slice(0, withChunks);
  const inserted = await query<Record<string, unknown>>(sql`
    with ins as (
      insert into tts_jobs as j (tenant_id, api_key_id, batch_id, idempotency_key, text, voice, engine, format,
        priority, chunks_total, chunks_queued, chars_total, sample_rate, speed, ssml)
      values (${j.tenantId}, ${j.apiKeyId ?? null}, ${j.batchId ?? null}, ${
    j.idempotencyKey ?? null
  }, ${j.text},
        ${j.voice}, ${j.engine}, ${j.format}, ${j.priority}, ${j.chunks.length}, ${head.length}, ${charsTotal},
        ${j.sampleRate}, ${j.speed ?? 1}, ${j.ssml ?? false})
      on conflict do nothing
      returning ${JOB_COLUMNS}
    ), chunks as (
      insert into tts_chunks (job_id, idx, tenant_id, text, priority_class)
      select ins.id, (c.ord - 1)::int, ins.tenant_id, c.value, ${priorityClassOf(sql`ins.priority`)}
      from ins, json_array_elements_text(${JSON.stringify(head)}::json) with ordinality as c(value, ord)
      returning 1
    )
    select ins.*, pg_notify(${WORK_CHANNEL}, '')${
    asyncCommit ? sql`, set_config('synchronous_commit', 'off', true) as async_commit` : sql``
  } from ins`);
  if (inserted[0]) {
    delete inserted[0].pg_notify;
    delete inserted[0].async_commit;
    return { job: normJob(inserted[0]), created: true };
  }
  const rows = await query<Record<string, unknown>>(sql`select ${JOB_COLUMNS}, j.text from tts_jobs j
    where j.tenant_id = ${j.tenantId} and j.idempotency_key = ${j.idempotencyKey ?? null}`);
  const row = rows[0];
  if (!row) throw new Error("idempotent submit: conflicting row not found");
  if (row.text !== j.text) {
    throw new IdempotencyConflictError("Idempotency-Key was already used with a different text");
  }
  delete row.text;
  return { job: normJob(row), created: false };
}

/**
 * Add chunks `from`… of a live job (one statement) and make them claimable; returns how many were added.
 * Idempotent: rows that exist are skipped and only the added ones are counted, so a late second submit
 * statement and the repair sweep can race. A job canceled meanwhile gets no counter change (the status is
 * rechecked under the row lock), so its work is never scheduled.
 */
async function insertChunks(query: Query, jobId: string, chunks: string[], from: number): Promise<number> {
  const rows = await query<{ n: number }>(sql`
    with live as (
      select id, tenant_id, priority from tts_jobs where id = ${jobId} and status in ('queued', 'running')
    ), ins as (
      insert into tts_chunks (job_id, idx, tenant_id, text, priority_class)
      select live.id, (c.ord - 1 + ${from})::int, live.tenant_id, c.value, ${
    priorityClassOf(sql`live.priority`)
  }
      from live, json_array_elements_text(${
    JSON.stringify(chunks.slice(from))
  }::json) with ordinality as c(value, ord)
      on conflict do nothing
      returning 1
    ), added as (select count(*)::int as n from ins), job as (
      -- runs although nothing selects from it: PostgreSQL executes every data-modifying WITH exactly once
      update tts_jobs j set chunks_queued = j.chunks_queued + added.n
      from added where j.id = ${jobId} and added.n > 0 and j.status in ('queued', 'running')
    )
    select added.n, pg_notify(${WORK_CHANNEL}, '') from added`);
  return Number(rows[0]?.n ?? 0);
}

/**
 * Finish long submits whose second statement never ran: live jobs older than `olderThanMs` whose last chunk row
 * is missing. `split` must be the chunker the edge used (the job's stored text is split again); if it no longer
 * gives `chunks_total` chunks starting with the stored first one, the job fails rather than speak wrong text.
 * Returns the ids of the jobs it completed and of those it failed.
 */
export async function completeInterruptedSubmits(
  database: Database,
  split: (text: string, ssml: boolean) => string[],
  olderThanMs = 10_000,
  limit = 20,
): Promise<{ completed: string[]; failed: string[] }> {
  const rows = await database.query<
    { id: string; text: string; ssml: boolean; chunks_total: number; first: string | null }
  >(
    sql`
    select j.id, j.text, j.ssml, j.chunks_total,
      (select k.text from tts_chunks k where k.job_id = j.id and k.idx = 0) as first
    from tts_jobs j
    where j.status in ('queued', 'running') and j.queued_at < now() - make_interval(secs => ${
      olderThanMs / 1000
    })
      and not exists (select 1 from tts_chunks k where k.job_id = j.id and k.idx = j.chunks_total - 1)
    limit ${limit}`,
  );
  const out = { completed: [] as string[], failed: [] as string[] };
  for (const r of rows) {
    const id = String(r.id);
    let chunks: string[];
    try {
      chunks = split(r.text, Boolean(r.ssml));
    } catch {
      chunks = []; // stored SSML no longer parses: fail the job below
    }
    if (chunks.length !== Number(r.chunks_total) || (r.first !== null && chunks[0] !== r.first)) {
      await endJob(
        database,
        id,
        "failed",
        "the submit was interrupted and the text no longer splits the same way",
      );
      out.failed.push(id);
      continue;
    }
    await insertChunks(database.query.bind(database), id, chunks, 0);
    out.completed.push(id);
  }
  return out;
}

/**
 * The fair order over runnable jobs (jobs with queued chunks), most deserving first:
 *   1. rank: interactive before batch; an interactive job keeps that rank for its first `interactiveChars`
 *      claimed characters only (0: for all of them), then competes as batch, so one long interactive job
 *      cannot hold every slot; with `batchFirst` (a worker's every K-th claim) the order of the two ranks flips,
 *      which guarantees batch work a share however much interactive work waits;
 *   2. jobs that have not had any chunk claimed yet (every job's first chunk is ahead of all later chunks);
 *   3. the tenant's service: characters claimed by all of the tenant's runnable jobs (tenants share fairly);
 *   4. the job's service: characters claimed so far (least attained service: short jobs finish first);
 *   5. submit time, then id (deterministic ties).
 * `fifo` is plain submit order — same statement, same code path.
 */
function orderBy(order: ClaimOrder, share: ClaimShare = {}): SQL {
  if (order === "fifo") return sql`r.queued_at, r.id`;
  const n = share.interactiveChars ?? 0;
  const interactive = n > 0
    ? sql`(r.priority = 'interactive' and r.chars_claimed < ${n})`
    : sql`(r.priority = 'interactive')`;
  return sql`${interactive} ${
    share.batchFirst ? sql`asc` : sql`desc`
  }, (r.chars_claimed > 0), r.tenant_claimed,
    r.chars_claimed, r.queued_at, r.id`;
}

/** Shares between the priority classes (config: TTS_INTERACTIVE_RANK_CHARS, TTS_BATCH_SHARE_EVERY). */
export interface ClaimShare {
  /** An interactive job ranks as interactive for its first this many claimed characters (0: always). */
  interactiveChars?: number;
  /** Rank batch ahead of interactive for this claim. */
  batchFirst?: boolean;
}

/**
 * Claim one chunk: the first unlocked queued chunk (lowest idx) of the most deserving runnable job. One statement:
 * pick (FOR UPDATE SKIP LOCKED, so concurrent claimers take different chunks and never wait on each other's
 * pick), mark the chunk running with a lease, and charge the job. Null when nothing is claimable.
 *
 * The job row is locked with SKIP LOCKED too, before its chunk: two claimers that both rank job X first would
 * otherwise serialize on X's row (the second one's `update tts_jobs` waits for the first one's commit); now the
 * second takes the next job in the fair order. This is the one exception to "chunk rows before job rows", and it
 * cannot deadlock because a claim never waits for any lock (both acquisitions skip, the updates hit rows it
 * already holds).
 *
 * The claim commits asynchronously (`synchronous_commit = off` for its own transaction only, set inside the
 * statement): it does not wait for the WAL flush, which was most of a claim's time (docs/tts-jobs.md). That is safe here because a claim is only a lease: if the server crashes and loses
 * the last claims, those chunks are back to `queued` with their previous attempt number, so they are claimed
 * again and the lost holder's result write is refused (status/attempt no longer match) — exactly one result per
 * chunk still holds. Result writes (the audio) keep the server's durable commit. `durable: true` restores it.
 */
export async function claimChunk(
  database: Database,
  opts: {
    nodeId: string;
    leaseMs: number;
    order?: ClaimOrder;
    share?: ClaimShare;
    scan?: number;
    durable?: boolean;
    /** Claim a chunk of an interactive job only (a slot kept for them). */
    interactiveOnly?: boolean;
  },
): Promise<ClaimedChunk | null> {
  const rows = await database.query<Record<string, unknown>>(sql`
    with runnable as (
      select r.id from (
        select j.id, j.priority, j.chars_claimed, j.queued_at,
          sum(j.chars_claimed) over (partition by j.tenant_id) as tenant_claimed
        from tts_jobs j
        where j.chunks_queued > 0 and j.status in ('queued', 'running')${
    opts.interactiveOnly ? sql` and j.priority = 'interactive'` : sql``
  }
      ) r
      order by ${orderBy(opts.order ?? "fair", opts.share)}
      limit ${opts.scan ?? 64}
    ), pick as (
      select c.job_id, c.idx
      from runnable r
      cross join lateral (
        select 1 from tts_jobs jl where jl.id = r.id for update skip locked
      ) job_lock
      cross join lateral (
        select k.job_id, k.idx from tts_chunks k
        where k.job_id = r.id and k.status = 'queued'
        order by k.idx
        limit 1
        for update skip locked
      ) c
      limit 1
    ), claimed as (
      update tts_chunks c set status = 'running', attempts = c.attempts + 1, claimed_by = ${opts.nodeId},
        claimed_at = now(), lease_until = now() + make_interval(secs => ${opts.leaseMs / 1000})
      from pick where c.job_id = pick.job_id and c.idx = pick.idx and c.status = 'queued'
      returning c.job_id, c.idx, c.text, c.attempts
    ), job as (
      update tts_jobs j set status = 'running', started_at = coalesce(j.started_at, now()),
        chunks_queued = j.chunks_queued - 1, chars_claimed = j.chars_claimed + char_length(claimed.text)
      from claimed where j.id = claimed.job_id
      returning j.id, j.voice, j.engine, j.sample_rate, j.speed, j.ssml, j.tenant_id, j.chunks_total, j.status,
        j.priority
    )
    select claimed.job_id, claimed.idx, claimed.text, claimed.attempts, job.voice, job.engine, job.sample_rate,
      job.speed, job.ssml, job.tenant_id, job.chunks_total, job.priority,
      (select p.text from tts_chunks p where p.job_id = claimed.job_id and p.idx = claimed.idx - 1) as prev_text${
    opts.durable ? sql`` : sql`, set_config('synchronous_commit', 'off', true) as async_commit`
  }
    from claimed join job on job.id = claimed.job_id`);
  const r = rows[0];
  if (!r) return null;
  return {
    jobId: String(r.job_id),
    idx: Number(r.idx),
    text: String(r.text),
    attempt: Number(r.attempts),
    voice: String(r.voice),
    engine: r.engine as TtsJobEngine,
    sampleRate: Number(r.sample_rate),
    speed: Number(r.speed ?? 1),
    ssml: r.ssml === true,
    tenantId: String(r.tenant_id),
    chunksTotal: Number(r.chunks_total),
    priority: r.priority as TtsPriority,
    prevText: r.prev_text == null ? null : String(r.prev_text),
  };
}

/** Extend a held lease. false = the lease is gone (job canceled or failed, or the chunk was reclaimed). */
export async function extendLease(
  database: Database,
  c: ChunkLease,
  leaseMs: number,
): Promise<boolean> {
  const rows = await database.query(sql`update tts_chunks
    set lease_until = now() + make_interval(secs => ${leaseMs / 1000})
    where job_id = ${c.jobId} and idx = ${c.idx} and status = 'running' and attempts = ${c.attempt}
    returning idx`);
  return rows.length === 1;
}

export interface ChunkResult {
  /** The chunk's audio as `codec` says (default `pcm`: PCM16 little-endian mono at the job's sample rate). */
  pcm: Uint8Array;
  audioMs: number;
  sampleRate: number;
  /** `pcm` or `opus` (lib/audio/stored_audio.ts). */
  codec?: string;
  /** Samples at `sampleRate` the audio decodes to (default: PCM bytes / 2). */
  samples?: number;
}

/**
 * Store a chunk's audio. Idempotent and exactly-once: only the current lease holder (status running, matching
 * attempt) can write, and only once (status becomes done). Progress, first_audio_at and completion are updated
 * in the same statement; the job's listeners are notified. Returns false when the write was refused.
 */
export async function writeResult(
  database: Database,
  c: ChunkLease,
  result: ChunkResult,
): Promise<{ accepted: boolean; jobStatus?: JobStatus; firstAudioSeconds?: number }> {
  const pcm = database.kind === "postgres" ? toBuffer(result.pcm) : result.pcm;
  const codec = result.codec ?? "pcm";
  const samples = result.samples ?? (codec === "pcm" ? result.pcm.length >> 1 : null);
  if (samples === null) throw new TypeError(`a ${codec} chunk result needs its sample count`);
  const rows = await database.query<{ status: JobStatus; first_audio_s: number | string | null }>(sql`
    with done as (
      update tts_chunks set status = 'done', pcm = ${pcm}, audio_ms = ${Math.round(result.audioMs)},
        codec = ${codec}, samples = ${samples},
        sample_rate = ${result.sampleRate}, done_at = now(), lease_until = null
      where job_id = ${c.jobId} and idx = ${c.idx} and status = 'running' and attempts = ${c.attempt}
      returning job_id, idx, char_length(text) as chars, audio_ms
    ), job as (
      update tts_jobs j set chunks_done = j.chunks_done + 1, chars_done = j.chars_done + done.chars,
        audio_ms = j.audio_ms + done.audio_ms,
        first_audio_at = case when done.idx = 0 then coalesce(j.first_audio_at, now()) else j.first_audio_at end,
        status = case when j.chunks_done + 1 >= j.chunks_total then 'succeeded' else j.status end,
        finished_at = case when j.chunks_done + 1 >= j.chunks_total then now() else j.finished_at end
      from done where j.id = done.job_id
      returning j.id, j.status, case when done.idx = 0
        then extract(epoch from (j.first_audio_at - j.queued_at))::float8 end as first_audio_s
    )
    select job.status, job.first_audio_s, pg_notify(${JOB_CHANNEL}, job.id::text) from job`);
  const r = rows[0];
  if (!r) return { accepted: false };
  return {
    accepted: true,
    jobStatus: r.status,
    firstAudioSeconds: r.first_audio_s === null || r.first_audio_s === undefined
      ? undefined
      : Number(r.first_audio_s),
  };
}

/** postgres.js sends Buffers as bytea; a plain Uint8Array would be serialised as text. */
function toBuffer(u: Uint8Array): Uint8Array {
  // deno-lint-ignore no-explicit-any
  const B = (globalThis as any).Buffer;
  return B ? B.from(u.buffer, u.byteOffset, u.byteLength) : u;
}

/**
 * A chunk could not be synthesized. Below `maxAttempts` it goes back to the queue; at the limit the job fails
 * (its other chunks are canceled). Only the lease holder can report. Returns what happened.
 */
export async function failChunk(
  database: Database,
  c: ChunkLease,
  error: string,
  maxAttempts: number,
): Promise<"requeued" | "job_failed" | "refused"> {
  if (c.attempt < maxAttempts) return await requeueHeld(database, c, false) ? "requeued" : "refused";
  const held = await database.query(sql`select 1 from tts_chunks
    where job_id = ${c.jobId} and idx = ${c.idx} and status = 'running' and attempts = ${c.attempt}`);
  if (!held.length) return "refused";
  await endJob(database, c.jobId, "failed", `chunk ${c.idx} failed after ${c.attempt} attempts: ${error}`);
  return "job_failed";
}

/**
 * Move a live job to a terminal status (canceled or failed): its queued and running chunks become canceled
 * (running ones lose their lease, so their results are refused), counters and finished_at are set, listeners
 * are notified. Chunks first, then the job (lock order). Returns the job row after the change, or null when
 * the job does not exist for that tenant. A job already terminal is returned unchanged.
 */
export async function endJob(
  database: Database,
  jobId: string,
  status: "canceled" | "failed",
  error: string | null,
  tenantId?: string,
): Promise<JobRow | null> {
  const tenant = tenantId ? sql`and tenant_id = ${tenantId}` : sql``;
  return await database.db.transaction(async (tx) => {
    await tx.execute(sql`update tts_chunks set status = 'canceled', lease_until = null
      where job_id = ${jobId} ${tenant} and status in ('queued', 'running')`);
    await tx.execute(sql`update tts_jobs set status = ${status}, error = ${error}, chunks_queued = 0,
      finished_at = now() where id = ${jobId} ${tenant} and status in ('queued', 'running')`);
    await tx.execute(sql`select pg_notify(${JOB_CHANNEL}, ${jobId})`);
    const rows = await tx.execute(sql`select ${JOB_COLUMNS} from tts_jobs j where j.id = ${jobId}
      ${tenantId ? sql`and j.tenant_id = ${tenantId}` : sql``}`);
    const row = (Array.isArray(rows) ? rows : (rows as { rows: unknown[] }).rows)[0];
    return row ? normJob(row as Record<string, unknown>) : null;
  });
}

/**
 * Requeue chunks whose lease expired (their origin crashed or stalled). A chunk that has already used
 * `maxAttempts` claims fails its job instead (a chunk that kills every origin that tries it must not loop
 * forever). SKIP LOCKED: several origins may run this at once. Returns how many chunks were requeued.
 */
export async function reclaimExpired(
  database: Database,
  maxAttempts: number,
  limit = 200,
): Promise<{ requeued: number; failedJobs: string[] }> {
  const rows = await database.query<{ job_id: string; n: number; chars: number; poisoned: number }>(sql`
    with expired as (
      select job_id, idx from tts_chunks
      where status = 'running' and lease_until < now()
      order by lease_until limit ${limit}
      for update skip locked
    ), requeued as (
      update tts_chunks c set status = 'queued', lease_until = null, claimed_by = null
      from expired where c.job_id = expired.job_id and c.idx = expired.idx
      returning c.job_id, char_length(c.text) as chars, c.attempts
    ), per_job as (
      select job_id, count(*)::int as n, sum(chars)::int as chars,
        count(*) filter (where attempts >= ${maxAttempts})::int as poisoned
      from requeued group by job_id
    ), j as (
      update tts_jobs j set chunks_queued = j.chunks_queued + per_job.n,
        chars_claimed = j.chars_claimed - per_job.chars
      from per_job where j.id = per_job.job_id
      returning j.id
    )
    select per_job.job_id, per_job.n, per_job.chars, per_job.poisoned from per_job join j on j.id = per_job.job_id`);
  let requeued = 0;
  const failedJobs: string[] = [];
  for (const r of rows) {
    requeued += Number(r.n);
    if (Number(r.poisoned) > 0) failedJobs.push(String(r.job_id));
  }
  for (const id of failedJobs) {
    await endJob(database, id, "failed", `a chunk's lease expired ${maxAttempts} times (origin crashes?)`);
  }
  if (requeued > 0) await database.notify(WORK_CHANNEL, "");
  return { requeued, failedJobs };
}

/** Give back a held chunk without a result (graceful shutdown): queued again at once, attempt not counted. */
export async function releaseChunk(
  database: Database,
  c: ChunkLease,
): Promise<boolean> {
  return await requeueHeld(database, c, true);
}

/**
 * A held chunk back to the queue (the holder failed it or gives it back), the job's counters with it, the
 * workers woken. `refund`: the attempt does not count. False when `c` no longer holds the chunk.
 */
async function requeueHeld(database: Database, c: ChunkLease, refund: boolean): Promise<boolean> {
  const rows = await database.query(sql`
    with c as (
      update tts_chunks set status = 'queued', lease_until = null, claimed_by = null${
    refund ? sql`, attempts = attempts - 1` : sql``
  }
      where job_id = ${c.jobId} and idx = ${c.idx} and status = 'running' and attempts = ${c.attempt}
      returning job_id, char_length(text) as chars
    ), j as (
      update tts_jobs j set chunks_queued = j.chunks_queued + 1, chars_claimed = j.chars_claimed - c.chars
      from c where j.id = c.job_id returning j.id
    )
    select j.id, pg_notify(${WORK_CHANNEL}, '') from j`);
  return rows.length === 1;
}

export async function getJob(database: Database, tenantId: string, jobId: string): Promise<JobRow | null> {
  const rows = await database.query<Record<string, unknown>>(sql`select ${JOB_COLUMNS} from tts_jobs j
    where j.id = ${jobId} and j.tenant_id = ${tenantId}`);
  return rows[0] ? normJob(rows[0]) : null;
}

/** Keyset page of a tenant's jobs, newest first. Cursor = "<queued_at µs since epoch>_<id>". */
export async function listJobs(
  database: Database,
  tenantId: string,
  opts: { status?: JobStatus; limit: number; cursor?: { micros: string; id: string } },
): Promise<{ jobs: JobRow[]; nextCursor: string | null }> {
  const rows = await database.query<Record<string, unknown>>(sql`
    select ${JOB_COLUMNS}, (extract(epoch from j.queued_at) * 1000000)::bigint::text as qmicros
    from tts_jobs j
    where j.tenant_id = ${tenantId}
      ${opts.status ? sql`and j.status = ${opts.status}` : sql``}
      ${
    opts.cursor
      ? sql`and (j.queued_at, j.id) < (timestamptz 'epoch' + ${opts.cursor.micros}::bigint
        * interval '1 microsecond', ${opts.cursor.id}::uuid)`
      : sql``
  }
    order by j.queued_at desc, j.id desc
    limit ${opts.limit + 1}`);
  const more = rows.length > opts.limit;
  const page = rows.slice(0, opts.limit);
  const last = page[page.length - 1];
  const nextCursor = more && last ? `${last.qmicros}_${last.id}` : null;
  return { jobs: page.map((r) => (delete r.qmicros, normJob(r))), nextCursor };
}

export interface DoneChunk {
  idx: number;
  audio_ms: number;
  /** The stored audio (with `withAudio`), encoded as `codec` says. */
  pcm?: Uint8Array;
  codec: string;
  /** Samples at the job's rate the audio decodes to. */
  samples: number;
}

/** Done chunks with idx ≥ from (in idx order), with or without their audio. */
export async function doneChunks(
  database: Database,
  jobId: string,
  from: number,
  opts: { withAudio: boolean; limit: number },
): Promise<DoneChunk[]> {
  const rows = await database.query<DoneChunk>(sql`
    select idx, audio_ms, codec, coalesce(samples, octet_length(pcm) / 2, 0) as samples
      ${opts.withAudio ? sql`, pcm` : sql``} from tts_chunks
    where job_id = ${jobId} and idx >= ${from} and status = 'done'
    order by idx limit ${opts.limit}`);
  return rows.map((r) => ({
    ...r,
    idx: Number(r.idx),
    audio_ms: Number(r.audio_ms),
    samples: Number(r.samples),
  }));
}

/**
 * Bytes of PCM16 in a job's done chunks once decoded (a finished job's Content-Length), whatever they are
 * stored as.
 */
export async function doneAudioBytes(database: Database, jobId: string): Promise<number> {
  const rows = await database.query<{ n: number | string }>(
    sql`select coalesce(sum(coalesce(samples::bigint * 2, octet_length(pcm))), 0)::bigint::text as n
      from tts_chunks where job_id = ${jobId} and status = 'done'`,
  );
  return Number(rows[0].n);
}

/** Bytes a job's audio takes in the database, per codec, with the audio seconds they hold. */
export async function storedAudioBytes(
  database: Database,
  jobId: string,
): Promise<Array<{ codec: string; bytes: number; seconds: number }>> {
  const rows = await database.query<{ codec: string; bytes: string; seconds: number | string }>(sql`
    select codec, coalesce(sum(octet_length(pcm)), 0)::bigint::text as bytes,
      coalesce(sum(coalesce(samples, octet_length(pcm) / 2)::float8 / sample_rate), 0)::float8 as seconds
    from tts_chunks where job_id = ${jobId} and status = 'done' group by codec order by codec`);
  return rows.map((r) => ({ codec: r.codec, bytes: Number(r.bytes), seconds: Number(r.seconds) }));
}

/** Claimable work by priority class (the queue-depth gauge). */
export async function queueDepth(database: Database): Promise<Record<string, number>> {
  const rows = await database.query<{ priority: string; n: number }>(sql`
    select priority, sum(chunks_queued)::int as n from tts_jobs where chunks_queued > 0 group by priority`);
  const out: Record<string, number> = { interactive: 0, batch: 0 };
  for (const r of rows) out[r.priority] = Number(r.n);
  return out;
}

/**
 * Job audio retention (TTS_AUDIO_RETENTION_DAYS): delete ended jobs (succeeded, failed, canceled) that finished
 * more than `days` days ago; their chunks and audio go with them (ON DELETE CASCADE). Queued and running jobs
 * are never touched. Batched like the session sweep. `days <= 0` keeps everything. Returns the jobs deleted.
 */
export async function sweepJobAudio(
  database: Database,
  days: number,
  opts: { batch?: number } = {},
): Promise<number> {
  if (!(days > 0)) return 0;
  const batch = opts.batch ?? 200;
  let total = 0;
  while (true) {
    const rows = await database.query<{ id: string }>(sql`
      delete from tts_jobs where id in (
        select id from tts_jobs
        where status in ('succeeded', 'failed', 'canceled')
          and finished_at < now() - make_interval(days => ${Math.floor(days)})
        limit ${batch})
      returning id`);
    total += rows.length;
    if (rows.length < batch) return total;
  }
}
