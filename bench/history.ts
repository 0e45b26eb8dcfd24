/**
 * History benchmark on real PostgreSQL: 1M confirmed segments over 10k sessions (10 tenants; one session with
 * 10k segments), loaded with batched multi-row INSERTs (the ingest rate is reported), then p50/p99 of
 *   - one transcript page of 500 from the 10k-segment session (goal ≤ 20 ms), in-process and over HTTP,
 *   - full-text search as one tenant (goal ≤ 100 ms), by how common the searched words are,
 *   - a session-list page.
 *
 *   deno run -A bench/history.ts [--segments 1000000] [--sessions 10000] [--measure 100000] [--iterations 200]
 *     [--keep]
 *
 * The first --measure segments (the 10k-segment session first) go in as the service writes them: batched
 * multi-row INSERTs with every index in place; that is the reported ingest rate. The rest are filled server
 * side (INSERT … SELECT generate_series, the search GIN index rebuilt after) to keep the run short.
 *
 * Uses DATABASE_URL or PARLEY_TEST_DATABASE_URL (a server, not a database: it creates and drops its own
 * database `parley_bench_history_<pid>`).
 */
import postgres from "postgres";
import { parseArgs } from "node:util";
import { createApiKey } from "../db/api_keys.ts";
import { type Database, openDatabase } from "../db/client.ts";
import { type SQL, sql } from "drizzle-orm";
import {
  listSessions,
  searchSegments,
  sessionOfTenant,
  transcriptPage,
  transcriptPageJson,
} from "../db/history.ts";
import { parseConfig } from "../lib/config.ts";
import { configureLogging, log } from "../lib/log.ts";
import { EdgeServer } from "../edge/server.ts";
import { historyRoutes } from "../edge/routes/history.ts";

configureLogging({ level: "error" });

const { values } = parseArgs({
  args: Deno.args,
  options: {
    segments: { type: "string", default: "1000000" },
    sessions: { type: "string", default: "10000" },
    tenants: { type: "string", default: "10" },
    big: { type: "string", default: "10000" },
    iterations: { type: "string", default: "200" },
    batch: { type: "string", default: "1000" },
    measure: { type: "string", default: "100000" },
    keep: { type: "boolean", default: false },
  },
});
const SEGMENTS = Number(values.segments);
const SESSIONS = Number(values.sessions);
const TENANTS = Number(values.tenants);
const BIG = Number(values.big);
const ITER = Number(values.iterations);
const BATCH = Number(values.batch);
/** Segments loaded through client-side batched INSERTs (the measured ingest); the rest is bulk-filled. */
const MEASURE = Number(values.measure);

const serverUrl = Deno.env.get("DATABASE_URL") || Deno.env.get("PARLEY_TEST_DATABASE_URL");
if (!serverUrl) {
  console.error("bench/history: set DATABASE_URL or PARLEY_TEST_DATABASE_URL to a PostgreSQL server");
  Deno.exit(2);
}
const dbName = `parley_bench_history_${Deno.pid}`;
const dbUrl = (() => {
  const u = new URL(serverUrl);
  u.pathname = `/${dbName}`;
  return u.toString();
})();

// ------------------------------------------------------------------------------------------------ data

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rnd = mulberry32(42);

// Vocabulary: real (non-stop) words at the top ranks, made-up words after; Zipf(1) frequencies.
const COMMON = (
  "meeting project weather customer order delivery price budget report schedule team office travel " +
  "ticket flight hotel invoice payment account contract support issue problem question answer update " +
  "release version feature design review launch market product service quality training manager " +
  "engineer coffee lunch dinner morning evening weekend holiday family friend doctor hospital school " +
  "student teacher lesson music movie garden kitchen window station train river mountain forest ocean " +
  "island village city country language history science computer network server database memory " +
  "battery camera picture letter message phone screen keyboard printer paper pencil bottle water " +
  "apple banana orange sugar bread cheese butter chicken salad soup dessert recipe"
).split(" ");
const VOCAB_SIZE = 5000;
const SYL = [
  "ka",
  "lo",
  "mi",
  "ne",
  "ru",
  "ta",
  "vo",
  "zi",
  "pe",
  "sa",
  "do",
  "fu",
  "gri",
  "bel",
  "tor",
  "nax",
];
const vocab: string[] = [...COMMON];
const seen = new Set(vocab);
while (vocab.length < VOCAB_SIZE) {
  const n = 2 + Math.floor(rnd() * 3);
  let w = "";
  for (let i = 0; i < n; i++) w += SYL[Math.floor(rnd() * SYL.length)];
  if (!seen.has(w)) {
    seen.add(w);
    vocab.push(w);
  }
}
const cdf: number[] = [];
{
  let acc = 0;
  for (let r = 1; r <= VOCAB_SIZE; r++) cdf.push(acc += 1 / r);
  for (let i = 0; i < cdf.length; i++) cdf[i] /= acc;
}
function word(): string {
  const u = rnd();
  let lo = 0, hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cdf[mid] < u) lo = mid + 1;
    else hi = mid;
  }
  return vocab[lo];
}
function sentence(): string {
  const n = 6 + Math.floor(rnd() * 11);
  const ws: string[] = [];
  for (let i = 0; i < n; i++) ws.push(word());
  return ws.join(" ");
}

// ------------------------------------------------------------------------------------------------ stats

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}
const ms = (x: number) => `${x.toFixed(1)} ms`;
/** The three slowest samples with their positions, e.g. "31.2@57 24.0@12 19.8@140" (where the tail comes from). */
const worst = (xs: number[]) =>
  xs.map((x, i) => [x, i]).sort((a, b) => b[0] - a[0]).slice(0, 3).map(([x, i]) => `${x.toFixed(1)}@${i}`)
    .join(" ");

async function timeIt(n: number, fn: (i: number) => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < Math.min(10, n); i++) await fn(i); // warm-up
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn(i);
    out.push(performance.now() - t0);
  }
  return out;
}

/**
 * The same queries, run by the same db/history.ts functions, but each statement prefixed with EXPLAIN ANALYZE:
 * collects the server's own execution + planning time. On a loaded machine the client-side wall time is mostly
 * CPU scheduling; this shows what the database itself spends.
 */
function explaining(database: Database, sink: number[]): Database {
  return {
    ...database,
    async query<T>(q: SQL): Promise<T[]> {
      const rows = await database.query<{ "QUERY PLAN": Array<Record<string, number>> | string }>(
        sql`explain (analyze, format json) ${q}`,
      );
      const plan = rows[0]["QUERY PLAN"];
      const top = (typeof plan === "string" ? JSON.parse(plan) : plan)[0];
      sink.push(top["Execution Time"] + top["Planning Time"]);
      return [] as T[];
    },
  } as Database;
}

/** Server time per call of `fn` (sum over its statements). */
async function serverTimes(n: number, fn: (db: Database, i: number) => Promise<unknown>, db: Database) {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const sink: number[] = [];
    await fn(explaining(db, sink), i);
    out.push(sink.reduce((a, b) => a + b, 0));
  }
  return out;
}

// ------------------------------------------------------------------------------------------------ run

const tStart = performance.now();
const loadAtStart = Deno.loadavg().map((x) => x.toFixed(1)).join(" ");
const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
await admin.unsafe(`drop database if exists ${dbName}`);
await admin.unsafe(`create database ${dbName}`);
const [{ server_version: version }] = await admin`show server_version`;
const database = await openDatabase({ url: dbUrl, poolSize: 4 });
const raw = postgres(dbUrl, { max: 2, onnotice: () => {} });
const table: Array<[string, string, string]> = [];

try {
  // tenants + sessions
  const tenantIds = (await raw`insert into tenants (name)
    select 'bench-' || g from generate_series(1, ${TENANTS}) g returning id`).map((r) => r.id as string);
  const now = Date.now();
  const sessionRows = Array.from({ length: SESSIONS }, (_, i) => ({
    id: crypto.randomUUID(),
    tenant_id: tenantIds[i % TENANTS],
    state: "closed",
    reason: "client_hangup",
    mode: "transcribe",
    created_at: new Date(now - 30 * 86400_000 + Math.floor(rnd() * 30 * 86400_000)).toISOString(),
  }));
  for (let i = 0; i < sessionRows.length; i += 1000) {
    await raw`insert into sessions ${raw(sessionRows.slice(i, i + 1000))}`;
  }

  // segments: session 0 (tenant 0) has BIG; the rest share SEGMENTS - BIG evenly
  const perSession = (i: number) => {
    if (i === 0) return BIG;
    const rest = SEGMENTS - BIG, others = SESSIONS - 1;
    return Math.floor(rest / others) + (i - 1 < rest % others ? 1 : 0);
  };
  let total = 0;
  let inFlight: Promise<unknown>[] = [];
  let batch: Record<string, unknown>[] = [];
  const t0 = performance.now();
  const flush = async () => {
    if (batch.length === 0) return;
    const rows = batch;
    batch = [];
    inFlight.push(
      raw`insert into transcript_segments ${
        raw(
          rows,
          "session_id",
          "tenant_id",
          "segment_id",
          "seq",
          "text",
          "start_ms",
          "end_ms",
          "latency_ms",
          "created_at",
        )
      }`,
    );
    if (inFlight.length >= 2) {
      await Promise.all(inFlight);
      inFlight = [];
    }
  };
  let lastReport = performance.now();
  let clientSessions = 0;
  for (let i = 0; i < SESSIONS && total < MEASURE; i++) {
    clientSessions = i + 1;
    const s = sessionRows[i];
    const base = Date.parse(s.created_at);
    const n = perSession(i);
    let t = 0;
    for (let k = 1; k <= n; k++) {
      const dur = 800 + Math.floor(rnd() * 3000);
      batch.push({
        session_id: s.id,
        tenant_id: s.tenant_id,
        segment_id: k,
        seq: 2 * k, // as if a partial preceded each confirmed result
        text: sentence(),
        start_ms: t,
        end_ms: t + dur,
        latency_ms: 150 + Math.floor(rnd() * 200),
        created_at: new Date(base + t + dur).toISOString(),
      });
      t += dur + 200;
      total++;
      if (batch.length >= BATCH) await flush();
    }
    if (performance.now() - lastReport > 15000) {
      lastReport = performance.now();
      const rate = total / ((performance.now() - t0) / 1000);
      console.error(`  loaded ${total} segments (${Math.round(rate)}/s)`);
    }
  }
  await flush();
  await Promise.all(inFlight);
  const loadS = (performance.now() - t0) / 1000;
  table.push([
    `ingest: ${total.toLocaleString("en")} segments, INSERT of ${BATCH} rows, 2 connections, all indexes`,
    `${Math.round(total / loadS).toLocaleString("en")} segments/s (${loadS.toFixed(0)} s)`,
    "—",
  ]);

  // Bulk fill of the remaining sessions, server side: INSERT … SELECT over generate_series, texts drawn from
  // the sentences loaded above (same word distribution), with the search GIN index built afterwards.
  if (clientSessions < SESSIONS) {
    const tb = performance.now();
    await raw`create table bench_text as select row_number() over () as i, text from transcript_segments`;
    await raw`alter table bench_text add primary key (i)`;
    const [{ pool }] = await raw`select count(*)::int as pool from bench_text`;
    await raw`create table bench_fill (id uuid, tenant_id uuid, created_at timestamptz, n int, ord int)`;
    const fill = sessionRows.slice(clientSessions).map((r, j) => ({
      id: r.id,
      tenant_id: r.tenant_id,
      created_at: r.created_at,
      n: perSession(clientSessions + j),
      ord: j,
    }));
    for (let i = 0; i < fill.length; i += 2000) {
      await raw`insert into bench_fill ${raw(fill.slice(i, i + 2000))}`;
    }
    const [{ indexdef }] = await raw`select indexdef from pg_indexes
      where indexname = 'transcript_segments_tenant_tsv_idx'`;
    await raw`drop index transcript_segments_tenant_tsv_idx`;
    const ti = performance.now();
    let filled = 0;
    for (let from = 0; from < fill.length; from += 1000) {
      const r = await raw`insert into transcript_segments
          (session_id, tenant_id, segment_id, seq, text, start_ms, end_ms, latency_ms, created_at)
        select f.id, f.tenant_id, k, 2 * k, t.text, (k - 1) * 2500, (k - 1) * 2500 + 2000, 250,
          f.created_at + make_interval(secs => k * 2.5)
        from bench_fill f
        cross join lateral generate_series(1, f.n) k
        join bench_text t on t.i = 1 + (abs(hashtext(f.id::text || ':' || k)) % ${pool})
        where f.ord >= ${from} and f.ord < ${from + 1000}`;
      filled += r.count;
      if (performance.now() - lastReport > 15000) {
        lastReport = performance.now();
        console.error(`  bulk filled ${filled} segments`);
      }
    }
    const insertS = (performance.now() - ti) / 1000;
    const tg = performance.now();
    await raw.begin(async (tx) => {
      await tx`set local maintenance_work_mem = '256MB'`;
      await tx.unsafe(indexdef);
    });
    const indexS = (performance.now() - tg) / 1000;
    await raw`drop table bench_fill`;
    await raw`drop table bench_text`;
    total += filled;
    table.push([
      `bulk fill: ${
        filled.toLocaleString("en")
      } segments, INSERT … SELECT generate_series, then build search GIN`,
      `${Math.round(filled / insertS).toLocaleString("en")} segments/s (${insertS.toFixed(0)} s) + GIN ${
        indexS.toFixed(0)
      } s; ${((performance.now() - tb) / 1000).toFixed(0)} s in all`,
      "—",
    ]);
  }
  const tAnalyze = performance.now();
  await raw`vacuum analyze transcript_segments`;
  await raw`vacuum analyze sessions`;
  console.error(`  vacuum analyze ${((performance.now() - tAnalyze) / 1000).toFixed(1)} s`);
  // Measure the steady state, not the bulk load's write-back: without a checkpoint here the checkpointer is
  // still flushing the bulk load's dirty pages during the first measurements (docs/benchmarks.md).
  const tCheckpoint = performance.now();
  await raw`checkpoint`.catch((e) => console.error(`  checkpoint skipped: ${e.message}`));
  console.error(`  checkpoint ${((performance.now() - tCheckpoint) / 1000).toFixed(1)} s`);
  // Likewise for this process: generating 100k rows left a large old space of garbage, and its first
  // mark-compacts during the page loop were pauses a service process would not have. With
  // --v8-flags=--expose-gc (as `deno task bench history` runs it) collect it first.
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) { for (let i = 0; i < 3; i++) gc(); }
  else console.error("  (run with --v8-flags=--expose-gc to start the measurements from a collected heap)");
  const [{ size }] = await raw`select pg_size_pretty(pg_total_relation_size('transcript_segments')) as size`;

  const big = sessionRows[0];
  const tenant0 = big.tenant_id;
  const maxSeq = 2 * BIG;

  // transcript page of 500 from the big session (what the JSON route does: ownership check + transcriptPageJson)
  const pageTimes = await timeIt(ITER, async (i) => {
    const after = (i * 997 * 2) % (maxSeq - 1000);
    const s = await sessionOfTenant(database, tenant0, big.id);
    const page = await transcriptPageJson(database, s!.id, after, 500);
    if (page.count !== 500 || !page.more) throw new Error(`page had ${page.count} rows`);
  });
  table.push([
    "transcript page of 500 (10k-segment session), in process (ownership + page)",
    `p50 ${ms(pct(pageTimes, 50))}, p99 ${ms(pct(pageTimes, 99))} (slowest ${worst(pageTimes)})`,
    "≤ 20 ms",
  ]);
  // the same page as row objects (what the caption exports read, 2,000 rows at a time)
  const rowTimes = await timeIt(ITER, async (i) => {
    const after = (i * 997 * 2) % (maxSeq - 1000);
    const s = await sessionOfTenant(database, tenant0, big.id);
    const rows = await transcriptPage(database, s!.id, after, 501);
    if (rows.length !== 501) throw new Error(`page had ${rows.length} rows`);
  });
  table.push([
    "  the same page parsed into row objects (export path)",
    `p50 ${ms(pct(rowTimes, 50))}, p99 ${ms(pct(rowTimes, 99))}`,
    "—",
  ]);
  const pageServer = await serverTimes(ITER, async (db, i) => {
    const after = (i * 997 * 2) % (maxSeq - 1000);
    await sessionOfTenant(db, tenant0, big.id);
    await transcriptPageJson(db, big.id, after, 500);
  }, database);
  table.push([
    "  the same, database time only (EXPLAIN ANALYZE: planning + execution)",
    `p50 ${ms(pct(pageServer, 50))}, p99 ${ms(pct(pageServer, 99))}`,
    "≤ 20 ms",
  ]);

  // the same over HTTP through the edge (auth, rate limit, JSON)
  const key = await createApiKey(database, {
    tenantId: tenant0,
    name: "bench",
    scopes: ["transcripts:read"],
  });
  const edge = await EdgeServer.start(
    parseConfig({ HOST: "127.0.0.1", PORT: "0", RATE_LIMIT_RPS: "100000", RATE_LIMIT_BURST: "100000" }),
    database,
    log,
    [historyRoutes],
  );
  const url = edge.url.replace("localhost", "127.0.0.1");
  const headers = { authorization: `Bearer ${key.key}` };
  try {
    const httpTimes = await timeIt(ITER, async (i) => {
      const after = (i * 997 * 2) % (maxSeq - 1000);
      const r = await fetch(`${url}/v1/sessions/${big.id}/transcript?after_seq=${after}&limit=500`, {
        headers,
      });
      // The body is read completely but parsed only every 20th call: the client shares this process (and its
      // garbage collector) with the edge, and turning 500 segments into objects is the client's work, not the
      // service's latency. The samples still check that every page is whole.
      const body = await r.text();
      if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
      if (i % 20 === 0 && JSON.parse(body).segments.length !== 500) throw new Error("short page");
    });
    table.push([
      "transcript page of 500 over HTTP (edge, JSON ~130 KB; body read, every 20th parsed)",
      `p50 ${ms(pct(httpTimes, 50))}, p99 ${ms(pct(httpTimes, 99))} (slowest ${worst(httpTimes)})`,
      "≤ 20 ms",
    ]);
    const vttTimes = await timeIt(Math.min(ITER, 30), async () => {
      const r = await fetch(`${url}/v1/sessions/${big.id}/transcript?format=vtt`, { headers });
      await r.text();
    });
    table.push([
      "whole 10k-segment transcript as WebVTT over HTTP",
      `p50 ${ms(pct(vttTimes, 50))}, p99 ${ms(pct(vttTimes, 99))}`,
      "—",
    ]);

    // search as tenant 0, by frequency band of the words searched
    const [{ n: tenantSegments }] = await raw`select count(*)::int as n from transcript_segments
      where tenant_id = ${tenant0}`;
    const bands: Array<[string, () => string]> = [
      ["rare word (rank 1000–5000)", () => vocab[1000 + Math.floor(rnd() * 4000)]],
      ["mid word (rank 100–1000)", () => vocab[100 + Math.floor(rnd() * 900)]],
      ["common word (rank 10–100)", () => vocab[10 + Math.floor(rnd() * 90)]],
      [
        "two words, AND (ranks 10–500)",
        () => `${vocab[10 + Math.floor(rnd() * 490)]} ${vocab[10 + Math.floor(rnd() * 490)]}`,
      ],
      [
        'phrase "w1 w2" (ranks 1–50)',
        () => `"${vocab[Math.floor(rnd() * 50)]} ${vocab[Math.floor(rnd() * 50)]}"`,
      ],
      ["most common word (rank 1–3)", () => vocab[Math.floor(rnd() * 3)]],
    ];
    const allSearch: number[] = [];
    const allServer: number[] = [];
    for (const [label, q] of bands) {
      const times = await timeIt(Math.max(20, Math.floor(ITER / 2)), async () => {
        await searchSegments(database, { tenantId: tenant0, q: q(), limit: 20 });
      });
      allSearch.push(...times);
      const server = await serverTimes(
        Math.max(20, Math.floor(ITER / 2)),
        (db) => searchSegments(db, { tenantId: tenant0, q: q(), limit: 20 }),
        database,
      );
      allServer.push(...server);
      // how many of the tenant's segments such a query matches (one sample)
      const sample = q();
      const [{ m }] = await raw`select count(*)::int as m from transcript_segments
        where tenant_id = ${tenant0} and tsv @@ websearch_to_tsquery('english', ${sample})`;
      table.push([
        `search: ${label}; e.g. ${JSON.stringify(sample)} matches ${Number(m).toLocaleString("en")} segments`,
        `p50 ${ms(pct(times, 50))}, p99 ${ms(pct(times, 99))}; database p50 ${ms(pct(server, 50))}, p99 ${
          ms(pct(server, 99))
        }`,
        "≤ 100 ms",
      ]);
    }
    table.push([
      `search: all bands above (tenant has ${Number(tenantSegments).toLocaleString("en")} segments)`,
      `p50 ${ms(pct(allSearch, 50))}, p99 ${ms(pct(allSearch, 99))}; database p50 ${
        ms(pct(allServer, 50))
      }, p99 ${ms(pct(allServer, 99))}`,
      "≤ 100 ms",
    ]);
    const searchHttp = await timeIt(Math.max(20, Math.floor(ITER / 2)), async () => {
      const r = await fetch(
        `${url}/v1/transcripts/search?q=${encodeURIComponent(vocab[100 + Math.floor(rnd() * 900)])}`,
        {
          headers,
        },
      );
      await r.json();
    });
    table.push([
      "search over HTTP: mid word",
      `p50 ${ms(pct(searchHttp, 50))}, p99 ${ms(pct(searchHttp, 99))}`,
      "≤ 100 ms",
    ]);

    // session list page (keyset), deep pages via cursor
    let cursor: { createdAt: string; id: string } | undefined;
    const listTimes = await timeIt(Math.min(ITER, 50), async () => {
      const page = await listSessions(database, { tenantId: tenant0, limit: 50, cursor });
      cursor = page.next;
    });
    table.push([
      "session list page of 50 (walking the cursor)",
      `p50 ${ms(pct(listTimes, 50))}, p99 ${ms(pct(listTimes, 99))}`,
      "—",
    ]);
  } finally {
    await edge.close();
  }
  table.push(["transcript_segments size (table + indexes)", String(size), "—"]);
} finally {
  await raw.end({ timeout: 5 });
  await database.close();
  if (!values.keep) await admin.unsafe(`drop database if exists ${dbName} with (force)`);
  await admin.end({ timeout: 5 });
}

const w0 = Math.max(...table.map((r) => r[0].length), 6);
const w1 = Math.max(...table.map((r) => r[1].length), 6);
const loadAtEnd = Deno.loadavg().map((x) => x.toFixed(1)).join(" ");
const totalS = ((performance.now() - tStart) / 1000).toFixed(0);
console.log(
  `\nbench/history — PostgreSQL ${version}; ${
    SEGMENTS.toLocaleString("en")
  } segments, ${SESSIONS} sessions, ` +
    `${TENANTS} tenants, ${ITER} iterations; total ${totalS} s; ${navigator.hardwareConcurrency} CPUs, ` +
    `load average ${loadAtStart} at start, ${loadAtEnd} at end\n`,
);
console.log(`| ${"metric".padEnd(w0)} | ${"result".padEnd(w1)} | goal     |`);
console.log(`| ${"-".repeat(w0)} | ${"-".repeat(w1)} | -------- |`);
for (const [a, b, c] of table) console.log(`| ${a.padEnd(w0)} | ${b.padEnd(w1)} | ${c.padEnd(8)} |`);
