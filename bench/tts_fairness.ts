/**
 * TTS scheduler benchmark on real PostgreSQL (DATABASE_URL or PARLEY_TEST_DATABASE_URL; a fresh database is
 * created and dropped). Real espeak synthesis in a 2-isolate pool, one in-process job worker with 2 slots.
 *
 *   deno run -A --unstable-worker-options bench/tts_fairness.ts
 *
 * Scenarios, side by side in one run (jobs submitted with db/tts_jobs.ts submitJobs, i.e. what the edge does
 * after validation; the edge's HTTP is not measured here):
 *   1. short jobs alone: a stream of short jobs (≤ 200 chars) → completion time (finished_at − queued_at);
 *   2. fair: 8 long jobs (≥ 20k chars each) submitted first, then the same stream of short jobs;
 *   3. fifo: the same with TTS_CLAIM_ORDER=fifo (same code, a flag). FIFO short jobs queue behind 160k chars, so
 *      their times are censored at the measurement window (reported as "> window");
 *   4. time to first audio of a 20k-char job vs a 50-char job (idle system, median of 7);
 *   5. throughput: audio seconds produced per CPU second of this process (all threads: synthesis isolates,
 *      worker, DB client; the Postgres server's CPU is not included) during scenario 2;
 *   6. claims/s: moved to bench/tts_claims.ts (`deno task bench tts_claims`);
 *   7. live priority: latency of "live" synthesis (another pool, like a session's) alone, with batch jobs
 *      running without the priority gate, and with it;
 *   8. class shares, strict (TTS_INTERACTIVE_RANK_CHARS=0, TTS_BATCH_SHARE_EVERY=0, TTS_LIVE_YIELD_MAX_MS=0:
 *      the scheduler before the shares) vs the configured shares: first-audio and completion p50/p99 of
 *      (a) 2-character batch jobs behind one 200k-character interactive job, and
 *      (b) 100-character jobs while 20 simulated live sessions keep the live pool (and so the gate) busy.
 *      Jobs not done within the window are counted, their times censored ("> window").
 *   BENCH_SCENARIOS=shares runs only 8 (a short run).
 */
import { createBenchDatabase } from "./bench_db.ts";
import { sql } from "drizzle-orm";
import { type Database, openDatabase } from "../db/client.ts";
import { createTenant } from "../db/api_keys.ts";
import { type ClaimOrder, endJob, type NewJob, submitJobs } from "../db/tts_jobs.ts";
import { chunkText } from "../protocol/tts_text.ts";
import { type ChunkSynthesizer, PoolSynthesizer } from "../origin/tts_jobs/synth.ts";
import { TtsJobWorker } from "../origin/tts_jobs/worker.ts";
import { PriorityGate } from "../origin/tts_jobs/priority_gate.ts";
import { configureLogging } from "../lib/log.ts";
import { ttsConfig } from "../origin/engine_config.ts";
import { parseConfig } from "../lib/config.ts";

configureLogging({ level: "error" });
// 40, not 16: with 16 samples the "p99" is the maximum, and one unlucky arrival decided the ratio
const SHORT_JOBS = Number(Deno.env.get("BENCH_SHORT_JOBS") ?? 40);
const TTFA_ROUNDS = 7;
/** Arrival interval of the short-job stream; default: calibrated to ~1.5× one short job's service time. */
let shortEveryMs = Number(Deno.env.get("BENCH_SHORT_EVERY_MS") ?? 0);
const FIFO_WINDOW_MS = 15_000;
const loadavg = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
const loadBefore = loadavg();

// ------------------------------------------------------------------------------------------------ helpers

let seed = 42;
const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
const WORDS = ("the quick brown fox jumps over lazy dog while seven bright engineers measure queue latency " +
  "under heavy load and every short request should still finish quickly because fairness matters more than " +
  "raw throughput when people wait for speech to begin playing in their browser")
  .split(" ");
function sentenceText(): string {
  const n = 8 + Math.floor(rnd() * 12);
  const w = Array.from({ length: n }, () => WORDS[Math.floor(rnd() * WORDS.length)]);
  w[0] = w[0][0].toUpperCase() + w[0].slice(1);
  return w.join(" ") + ".";
}
function textOf(minChars: number, maxChars = Infinity): string {
  let t = "";
  while (t.length < minChars) {
    const s = sentenceText();
    if ((t + " " + s).trim().length > maxChars) break;
    t = (t + " " + s).trim();
  }
  return t;
}
/**
 * A 46–50-character sentence for the first-audio comparison. (Until run 7 this was `textOf(40, 50)`, which is
 * empty whenever the first random sentence is longer than 50 characters; its 33-character fallback was used in
 * most rounds, so the "50-char job" was mostly a 33-char one.)
 */
function fiftyCharText(): string {
  while (true) {
    let t = "";
    for (const w of sentenceText().slice(0, -1).split(" ")) {
      if ((t + " " + w).trim().length > 49) break;
      t = (t + " " + w).trim();
    }
    if (t.length >= 45) return t + ".";
  }
}
function shortText(): string {
  const t = textOf(120, 200);
  return t.length ? t : sentenceText().slice(0, 200);
}

const q = (xs: number[], p: number) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
};
const sec = (ms: number) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : "n/a");

function cpuSeconds(): number {
  const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, clock ticks (100 Hz), all threads
}

function job(tenantId: string, text: string, priority: "interactive" | "batch" = "interactive"): NewJob {
  return {
    tenantId,
    text,
    voice: "en-us",
    engine: "espeak",
    format: "wav",
    priority,
    sampleRate: 22050,
    chunks: chunkText(text),
  };
}

/** A synthesizer that is not closed with the worker (shared by all scenarios). */
const keep = (s: ChunkSynthesizer): ChunkSynthesizer => ({
  synthesize: (...a) => s.synthesize(...a),
  ready: () => s.ready(),
  close: () => Promise.resolve(),
});

async function cancelAll(db: Database): Promise<void> {
  const rows = await db.query<{ id: string }>(
    sql`select id from tts_jobs where status in ('queued', 'running')`,
  );
  for (const r of rows) await endJob(db, r.id, "canceled", null);
}

async function timesOf(db: Database, ids: string[]): Promise<Map<string, number | null>> {
  const rows = await db.query<{ id: string; ms: number | null }>(sql`
    select id::text as id, case when status = 'succeeded'
      then extract(epoch from (finished_at - queued_at)) * 1000 end::float8 as ms
    from tts_jobs where id in ${sql.raw(`('${ids.join("','")}')`)}`);
  return new Map(rows.map((r) => [r.id, r.ms === null ? null : Number(r.ms)]));
}

// ------------------------------------------------------------------------------------------------ setup

const benchDb = await createBenchDatabase("parley_bench");
const url = benchDb.url;
const db = await openDatabase({ url, poolSize: 6 });
const tenant = (await createTenant(db, "bench")).id;
console.error("loading 2 espeak synthesis isolates…");
const pool = await PoolSynthesizer.create({ workers: 2, tts: ttsConfig(parseConfig({})) });
// WASM tier-up: the first few dozen synthesis calls of an isolate are several times slower; warm both.
for (let i = 0; i < 10; i++) {
  await Promise.all([0, 1].map(() => pool.synthesize(textOf(150, 250), "en-us", "espeak", 22050)));
}

type Share = { interactiveChars: number; batchEvery: number; liveYieldMaxMs: number };

async function withWorker<T>(
  order: ClaimOrder,
  fn: (w: TtsJobWorker) => Promise<T>,
  gate?: PriorityGate,
  share?: Share,
  concurrency = 2,
): Promise<T> {
  const w = await TtsJobWorker.start(db, {
    nodeId: `bench-${order}`,
    concurrency,
    leaseMs: 10_000,
    pollMs: 200,
    order,
    maxAttempts: 3,
    synth: keep(pool),
    gate,
    share,
  });
  try {
    return await fn(w);
  } finally {
    await w.close();
    await cancelAll(db);
  }
}

/** Submit the short-job stream; wait for completion (or the window); return per-job ms (null = not done). */
async function shortStream(windowMs: number): Promise<Array<number | null>> {
  seed = 7; // the same stream in every scenario
  const ids: string[] = [];
  for (let i = 0; i < SHORT_JOBS; i++) {
    const [r] = await submitJobs(db, [job(tenant, shortText())]);
    ids.push(r.job.id);
    await new Promise((r) => setTimeout(r, shortEveryMs));
  }
  const deadline = Date.now() + windowMs;
  while (Date.now() < deadline) {
    const t = await timesOf(db, ids);
    if ([...t.values()].every((v) => v !== null)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const t = await timesOf(db, ids);
  return ids.map((id) => t.get(id) ?? null);
}

async function submitLong(): Promise<number> {
  seed = 99;
  let chars = 0;
  for (let i = 0; i < 8; i++) {
    const text = textOf(20_000);
    chars += text.length;
    await submitJobs(db, [job(tenant, text)]);
  }
  return chars;
}

const results: Array<[string, string]> = [];
/** Ends the scenario list early (BENCH_SCENARIOS). */
class Done extends Error {}
const row = (k: string, v: string) => {
  results.push([k, v]);
  console.error(`${k}: ${v}`);
};

const onlyShares = Deno.env.get("BENCH_SCENARIOS") === "shares";

/** Per job: ms from submit to first audio and to completion (null = not yet). */
async function firstAndDone(ids: string[]): Promise<Array<{ first: number | null; done: number | null }>> {
  const rows = await db.query<{ id: string; first: number | null; done: number | null }>(sql`
    select id::text as id,
      (extract(epoch from (first_audio_at - queued_at)) * 1000)::float8 as first,
      case when status = 'succeeded' then (extract(epoch from (finished_at - queued_at)) * 1000)::float8 end
        as done
    from tts_jobs where id in ${sql.raw(`('${ids.join("','")}')`)}`);
  const m = new Map(rows.map((r) => [r.id, r]));
  return ids.map((id) => {
    const r = m.get(id);
    return {
      first: r?.first == null ? null : Number(r.first),
      done: r?.done == null ? null : Number(r.done),
    };
  });
}

/** Submit `n` jobs `every` ms apart, wait until all are done or the window ends; p50/p99 of both times. */
async function measureJobs(
  n: number,
  every: number,
  text: () => string,
  priority: "interactive" | "batch",
  windowMs: number,
): Promise<string> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    ids.push((await submitJobs(db, [job(tenant, text(), priority)]))[0].job.id);
    await new Promise((r) => setTimeout(r, every));
  }
  const deadline = Date.now() + windowMs;
  let t = await firstAndDone(ids);
  while (Date.now() < deadline && t.some((x) => x.done === null)) {
    await new Promise((r) => setTimeout(r, 100));
    t = await firstAndDone(ids);
  }
  const pct = (xs: Array<number | null>) => {
    const done = xs.filter((x): x is number => x !== null);
    if (done.length < xs.length) {
      return `> ${windowMs / 1000} s (${done.length}/${xs.length} within the window)`;
    }
    return `${sec(q(done, 0.5))} / ${sec(q(done, 0.99))}`;
  };
  return `first audio p50/p99 ${pct(t.map((x) => x.first))}; completion p50/p99 ${pct(t.map((x) => x.done))}`;
}

const STRICT: Share = { interactiveChars: 0, batchEvery: 0, liveYieldMaxMs: 0 };
const defaults = parseConfig({});
const SHARES: Share = {
  interactiveChars: defaults.TTS_INTERACTIVE_RANK_CHARS,
  batchEvery: defaults.TTS_BATCH_SHARE_EVERY,
  liveYieldMaxMs: defaults.TTS_LIVE_YIELD_MAX_MS,
};
const SHARE_WINDOW_MS = Number(Deno.env.get("BENCH_SHARE_WINDOW_MS") ?? 20_000);
/**
 * Worker slots in scenario 8: TTS_WORKERS' default (cores − 1). With two slots, one slot's result write holds
 * the long job's row and the other slot's claim (SKIP LOCKED) takes the next job, which lets batch in by
 * accident; one slot shows the strict order as it is.
 */
const SHARE_SLOTS = Number(Deno.env.get("BENCH_SHARE_SLOTS") ?? defaults.TTS_WORKERS);

async function sharesScenarios(): Promise<void> {
  const label = (s: Share) =>
    s === STRICT
      ? "strict (old)"
      : `shares (rank ${s.interactiveChars} chars, batch 1 in ${s.batchEvery}, live yield ≤ ${s.liveYieldMaxMs} ms)`;
  seed = 11;
  const book = textOf(200_000);
  for (const share of [STRICT, SHARES]) {
    const r = await withWorker(
      "fair",
      async () => {
        await submitJobs(db, [job(tenant, book, "interactive")]);
        await new Promise((r) => setTimeout(r, 1500)); // the long job holds the slots
        return await measureJobs(6, 300, () => "Hi", "batch", SHARE_WINDOW_MS);
      },
      undefined,
      share,
    );
    row(
      `8a. 2-char batch jobs behind a ${book.length}-char interactive job, ${SHARE_SLOTS} slot(s), ${
        label(share)
      }`,
      r,
    );
  }
  const livePool = await PoolSynthesizer.create({ workers: 1, name: "live", tts: ttsConfig(defaults) });
  const liveText = "Sure, I can help with that. What would you like to hear next?";
  for (let i = 0; i < 15; i++) await livePool.synthesize(liveText, "en-us", "espeak", 48000); // tier-up
  try {
    for (const share of [STRICT, SHARES]) {
      const gate = new PriorityGate();
      let live = true;
      const liveLat: number[] = [];
      // 20 sessions, each speaking a reply every 0.5–1 s after the last: the live pool's queue is rarely empty
      const sessions = Array.from({ length: 20 }, async (_, i) => {
        await new Promise((r) => setTimeout(r, i * 50));
        while (live) {
          const t0 = performance.now();
          await gate.runLive(() => livePool.synthesize(liveText, "en-us", "espeak", 48000));
          liveLat.push(performance.now() - t0);
          await new Promise((r) => setTimeout(r, 500 + rnd() * 500));
        }
      });
      seed = 13;
      const r = await withWorker(
        "fair",
        async () => {
          await new Promise((r) => setTimeout(r, 1000));
          return await measureJobs(
            6,
            300,
            () => textOf(90, 100) || sentenceText(),
            "interactive",
            SHARE_WINDOW_MS,
          );
        },
        gate,
        share,
      );
      live = false;
      await Promise.all(sessions);
      row(
        `8b. 100-char jobs under 20 live sessions, ${SHARE_SLOTS} slot(s), ${label(share)}`,
        `${r}; live synthesis p50/p99 ${sec(q(liveLat, 0.5))} / ${sec(q(liveLat, 0.99))}`,
      );
    }
  } finally {
    await livePool.close();
  }
}

try {
  if (onlyShares) {
    await sharesScenarios();
    throw new Done();
  }
  // 0. calibrate the stream: short jobs one at a time (closed loop), so the stream stays below capacity
  if (!shortEveryMs) {
    const solo = await withWorker("fair", async () => {
      seed = 3;
      const t: number[] = [];
      for (let i = 0; i < 3; i++) {
        const [r] = await submitJobs(db, [job(tenant, shortText())]);
        while (true) {
          const m = (await timesOf(db, [r.job.id])).get(r.job.id);
          if (m !== null && m !== undefined) {
            t.push(m);
            break;
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      return q(t, 0.5);
    });
    shortEveryMs = Math.max(300, Math.round(1.5 * solo));
    row(
      "short job alone, one at a time (calibration)",
      `${sec(solo)}; stream: one short job every ${shortEveryMs} ms`,
    );
  }

  // 1. short jobs alone
  const alone = await withWorker("fair", () => shortStream(60_000));
  const aloneMs = alone.filter((x): x is number => x !== null);
  row(
    "short jobs alone: p50 / p99",
    `${sec(q(aloneMs, 0.5))} / ${sec(q(aloneMs, 0.99))} (n=${aloneMs.length})`,
  );

  // 2. fair, loaded
  let throughput = "";
  const fair = await withWorker("fair", async () => {
    const longChars = await submitLong();
    await new Promise((r) => setTimeout(r, 1500)); // workers busy with long chunks
    const cpu0 = cpuSeconds();
    const t0 = performance.now();
    const a0 = await db.query<{ ms: number }>(
      sql`select coalesce(sum(audio_ms), 0)::float8 as ms from tts_chunks
      where status = 'done'`,
    );
    const r = await shortStream(60_000);
    const a1 = await db.query<{ ms: number }>(
      sql`select coalesce(sum(audio_ms), 0)::float8 as ms from tts_chunks
      where status = 'done'`,
    );
    const cpu = cpuSeconds() - cpu0;
    const audio = (Number(a1[0].ms) - Number(a0[0].ms)) / 1000;
    const wall = (performance.now() - t0) / 1000;
    throughput = `${(audio / cpu).toFixed(1)} audio s per CPU s (${audio.toFixed(0)} s audio in ${
      wall.toFixed(1)
    } s wall, ${cpu.toFixed(1)} CPU s; ${(audio / wall).toFixed(1)}× real time)`;
    console.error(`  (8 long jobs, ${longChars} chars in total)`);
    return r;
  });
  const fairMs = fair.filter((x): x is number => x !== null);
  row(
    "short jobs behind 8×20k-char jobs, fair: p50 / p99",
    `${sec(q(fairMs, 0.5))} / ${
      sec(q(fairMs, 0.99))
    } (n=${fairMs.length}/${fair.length}); p99 ratio to alone ${
      (q(fairMs, 0.99) / q(aloneMs, 0.99)).toFixed(2)
    } (goal ≤ 2)`,
  );

  // 3. fifo, loaded
  const fifo = await withWorker("fifo", async () => {
    await submitLong();
    await new Promise((r) => setTimeout(r, 1500));
    return await shortStream(FIFO_WINDOW_MS);
  });
  const fifoDone = fifo.filter((x): x is number => x !== null);
  row(
    "short jobs behind 8×20k-char jobs, fifo: p50 / p99",
    fifoDone.length === fifo.length
      ? `${sec(q(fifoDone, 0.5))} / ${sec(q(fifoDone, 0.99))}`
      : `> ${FIFO_WINDOW_MS / 1000} s: ${fifoDone.length}/${fifo.length} finished within the window` +
        ` (the queue ahead of them is ~160k chars, hours of synthesis)`,
  );

  // 4. time to first audio
  const claimMs: number[] = [], firstChars: number[] = [];
  const ttfa = async (text: string) => {
    const spec = job(tenant, text);
    firstChars.push(spec.chunks[0].length);
    const [r] = await submitJobs(db, [spec]);
    while (true) {
      const rows = await db.query<{ ms: number | null; claim: number }>(sql`select extract(epoch from
        (first_audio_at - queued_at)) * 1000 as ms, extract(epoch from (started_at - queued_at)) * 1000 as claim
        from tts_jobs where id = ${r.job.id}`);
      if (rows[0].ms !== null) {
        await endJob(db, r.job.id, "canceled", null);
        claimMs.push(Number(rows[0].claim));
        return Number(rows[0].ms);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const { big, small } = await withWorker("fair", async () => {
    const big: number[] = [], small: number[] = [];
    seed = 5;
    for (let i = 0; i < TTFA_ROUNDS; i++) {
      big.push(await ttfa(textOf(20_000)));
      await new Promise((r) => setTimeout(r, 1500)); // let in-flight chunks of the canceled job drain
      small.push(await ttfa(fiftyCharText()));
      await new Promise((r) => setTimeout(r, 500));
    }
    return { big, small };
  });
  row(
    `time to first audio, 20k-char vs 50-char job (median of ${TTFA_ROUNDS})`,
    `${q(big, 0.5).toFixed(1)} ms vs ${q(small, 0.5).toFixed(1)} ms: ratio ${
      (q(big, 0.5) / q(small, 0.5)).toFixed(2)
    } (goal ≤ 1.5); first chunk ${q(firstChars.filter((_, i) => i % 2 === 0), 0.5)} vs ${
      q(firstChars.filter((_, i) => i % 2 === 1), 0.5)
    } chars (medians); submit → first claim ${
      claimMs.filter((_, i) => i % 2 === 0).map((m) => m.toFixed(0))
    } ms` +
      ` vs ${claimMs.filter((_, i) => i % 2 === 1).map((m) => m.toFixed(0))} ms`,
  );
  row("throughput (fair run, 2 synthesis isolates)", throughput);

  // 6. claims/s: bench/tts_claims.ts (deno task bench tts_claims)
  const sel = performance.now();
  for (let i = 0; i < 100; i++) await db.query(sql`select 1`);
  row("reference: one `select 1` round trip", `${((performance.now() - sel) / 100).toFixed(2)} ms`);

  // 7. live priority
  const livePool = await PoolSynthesizer.create({
    workers: 1,
    name: "live",
    tts: ttsConfig(parseConfig({})),
  });
  const liveText = "Sure, I can help with that. What would you like to hear next?";
  for (let i = 0; i < 15; i++) await livePool.synthesize(liveText, "en-us", "espeak", 48000); // tier-up
  const liveRun = async (gate: PriorityGate | null, batch: boolean) => {
    const lat: number[] = [];
    const run = async () => {
      for (let i = 0; i < 12; i++) {
        const t0 = performance.now();
        const synth = () => livePool.synthesize(liveText, "en-us", "espeak", 48000);
        await (gate ? gate.runLive(synth) : synth());
        lat.push(performance.now() - t0);
        await new Promise((r) => setTimeout(r, 250));
      }
    };
    if (!batch) {
      await run();
      return lat;
    }
    await withWorker("fair", async () => {
      await submitLong();
      await new Promise((r) => setTimeout(r, 1500));
      await run();
    }, gate ?? undefined);
    return lat;
  };
  const l0 = await liveRun(null, false);
  const l1 = await liveRun(null, true);
  const l2 = await liveRun(new PriorityGate(), true);
  await livePool.close();
  const fmt = (l: number[]) => `p50 ${sec(q(l, 0.5))} / p99 ${sec(q(l, 0.99))}`;
  row("live synthesis latency alone", fmt(l0));
  row("live synthesis latency + batch jobs, no gate", fmt(l1));
  row("live synthesis latency + batch jobs, priority gate", fmt(l2));

  // 8. class shares
  await sharesScenarios();
} catch (e) {
  if (!(e instanceof Done)) throw e;
} finally {
  await pool.close();
  await db.close();
  await benchDb.drop();
}

const w = Math.max(...results.map(([k]) => k.length));
const when = new Date().toISOString();
console.log(
  `\nTTS scheduler benchmark (${when}, ${navigator.hardwareConcurrency} cores, PostgreSQL 15; ` +
    `load average ${loadBefore} at start, ${loadavg()} at end)`,
);
console.log(`${"measure".padEnd(w)} | result`);
console.log(`${"-".repeat(w)} | ${"-".repeat(40)}`);
for (const [k, v] of results) console.log(`${k.padEnd(w)} | ${v}`);
Deno.exit(0);
