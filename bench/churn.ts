/**
 * Churn benchmark: N sessions (default 1000) connect → 1 s of audio (echo) → close, against ONE origin
 * SessionManager running in a CHILD process, so the origin's threads, fds and RSS are read from /proc/<pid>.
 * Prints them at 0/100/500/1000 completed sessions (measured with no session in flight), setup latency
 * (POST → answer) p50/p99, and the final state/reason of every session row. Ends by SIGTERMing the origin with
 * a few peers connected: it must send `bye origin_shutdown` to each and exit 0 (no segfault, no hang).
 *
 *   deno run -A bench/churn.ts [--sessions 1000] [--concurrency 10] [--audio-ms 1000] [--warmup 20] [--gc] [--disk-db] [--max-seconds 270]
 *
 * Database: DATABASE_URL if set, else PGlite memory:// (fast commits, but every row and WAL page then sits in
 * the origin's RSS; docs/benchmarks.md has the size); --disk-db: PGlite in a temp data dir (RSS without the
 * database's files, but commits are much slower on a loaded machine).
 * --max-seconds S (default 270): stop starting sessions after S seconds so the run stays under 5 minutes; the
 * last checkpoint then reports how many sessions were done.
 * --gc: the origin runs with --expose-gc and collects garbage before each measurement (to tell memory that a
 * GC would free from real leaks).
 *
 * The baseline ("0") is taken after a short warm-up (default 2 × concurrency sessions, not counted): the HTTP
 * keep-alive connections of the driver (one fd each), JIT code and database buffers are process-lived.
 *
 * Structure, for reuse (e.g. an edge-routed variant): `startOriginChild()` starts the origin and returns a
 * `ChurnDriver` talking to it over a tiny HTTP API; `runChurn(driver, opts)` drives any ChurnDriver, so a
 * driver whose createSession POSTs to the edge's /v1/sessions works the same way (originPid = the origin
 * behind that edge).
 *
 * The child (`--origin`) serves on 127.0.0.1:0 and prints `{"port":…}` on stdout:
 *   POST   /sessions            {sdp, options?} → {id, sdp}      (SessionManager.createSession)
 *   DELETE /sessions/:id        → summary                         (SessionManager.end, client_hangup)
 *   GET    /summary             → {live, rows: {"closed/admin": n, …}}
 *   GET    /pacing              → outbound frame gap percentiles over live sessions (bench/pacing.ts)
 * On SIGTERM: closeAll("origin_shutdown"), close the DB, Deno.exit(0).
 */
import { sql } from "drizzle-orm";
import { openDatabase } from "../db/client.ts";
import { tenants } from "../db/schema.ts";
import { configureLogging } from "../lib/log.ts";
import { ApiError } from "../lib/errors.ts";
import { outboundClockSkips } from "../origin/session/outbound_audio.ts";
import { type ProcStats, procStats } from "../origin/session/proc_stats.ts";
import { SessionManager } from "../origin/session/session_manager.ts";
import { TestClient } from "../origin/session/test_client.ts";
import { exitCleanly } from "../origin/session/wrtc.ts";

// ---------------------------------------------------------------- origin child

async function originMain(): Promise<void> {
  configureLogging({ level: "error" });
  const url = Deno.env.get("DATABASE_URL") || undefined;
  // PGlite on a temp data dir, not memory:// (an in-memory PGlite keeps every table and WAL file in this
  // process's RSS, which would be counted as session growth; production uses Postgres or a PGlite data dir).
  // CHURN_DB=memory trades that for faster commits (closer to a real Postgres server's setup latency).
  const inMemory = Deno.env.get("CHURN_DB") !== "disk";
  const tmp = url || inMemory ? undefined : await Deno.makeTempDir({ prefix: "parley-churn-" });
  const database = await openDatabase(url ? { url } : { dataDir: tmp ? `${tmp}/pglite` : "memory://" });
  const [t] = await database.db.insert(tenants).values({ name: "churn" }).returning();
  const capacity = Number(Deno.env.get("CHURN_CAPACITY") ?? 200);
  const manager = new SessionManager({
    database,
    nodeId: "churn-origin",
    capacity,
    recordOutboundGaps: Deno.env.get("CHURN_RECORD_GAPS") === "1",
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const u = new URL(req.url);
    try {
      if (req.method === "POST" && u.pathname === "/sessions") {
        const body = await req.json();
        const id = crypto.randomUUID();
        const r = await manager.createSession(body.sdp, body.options ?? { mode: "echo" }, t.id, id);
        return Response.json({ id, sdp: r.sdp }, { status: 201 });
      }
      const m = u.pathname.match(/^\/sessions\/([0-9a-f-]+)$/);
      if (req.method === "DELETE" && m) {
        return Response.json(await manager.end(m[1], "client_hangup"));
      }
      if (req.method === "GET" && u.pathname === "/summary") {
        const rows = await database.query<{ state: string; reason: string | null; n: number }>(
          sql`select state, reason, count(*)::int as n from sessions group by 1, 2 order by 1, 2`,
        );
        const out: Record<string, number> = {};
        for (const r of rows) out[`${r.state}/${r.reason ?? "-"}`] = Number(r.n);
        return Response.json({ live: manager.count(), rows: out });
      }
      if (req.method === "GET" && u.pathname === "/mem") {
        // With CHURN_GC=1 the child runs with --expose-gc: collect first (tells GC-able garbage from leaks).
        const gc = (globalThis as { gc?: () => void }).gc;
        if (gc) { for (let i = 0; i < 3; i++) gc(); }
        return Response.json({ gc: !!gc, ...Deno.memoryUsage() });
      }
      if (req.method === "GET" && u.pathname === "/pacing") {
        const gaps: number[] = [];
        let frames = 0, maxGap = 0, onDataMs = 0, onDataMaxMs = 0;
        for (const s of manager.list()) {
          onDataMs += s.outbound.onDataMs;
          onDataMaxMs = Math.max(onDataMaxMs, s.outbound.onDataMaxMs);
          gaps.push(...(s.outbound.gapsMs ?? []));
          frames += s.outbound.frames;
          maxGap = Math.max(maxGap, s.outbound.maxGapMs);
        }
        return Response.json({
          sessions: manager.count(),
          frames,
          gaps: summarize(gaps),
          over20: gaps.filter((g) => g > 20).length,
          maxGap,
          clockSkips: outboundClockSkips(),
          onDataAvgMs: onDataMs / Math.max(1, frames),
          onDataMaxMs,
        });
      }
      return new Response("not found", { status: 404 });
    } catch (err) {
      if (err instanceof ApiError) return Response.json(err.toJSON(), { status: err.status });
      return Response.json({ error: String(err) }, { status: 503 });
    }
  });
  Deno.addSignalListener("SIGTERM", () => {
    exitCleanly(async () => {
      await manager.closeAll("origin_shutdown");
      await server.shutdown();
      await database.close();
      if (tmp) await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }, 0);
  });
  console.log(JSON.stringify({ port: (server.addr as Deno.NetAddr).port, pid: Deno.pid }));
}

// ---------------------------------------------------------------- driver side

export interface ChurnDriver {
  /** POST the offer, get the session id and answer. */
  createSession(offerSdp: string): Promise<{ id: string; sdp: string }>;
  deleteSession(id: string): Promise<void>;
  /** pid of the origin process whose /proc is measured. */
  readonly originPid: number;
  /** Override for what is measured (default procStats(originPid)); e.g. a supervised origin's process tree. */
  stats?(): ProcStats & { processes?: number };
  summary(): Promise<{ live: number; rows: Record<string, number> }>;
  get<T>(path: string): Promise<T>;
  /** SIGTERM the origin; resolves with its exit status. */
  terminate(): Promise<Deno.CommandStatus>;
}

/** The first stdout line of a child that prints `{"port":…}` (JSON) when ready; the rest of stdout is dropped. */
export async function readyLine<T>(child: Deno.ChildProcess): Promise<T> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (!buf.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("origin child exited before it was ready");
    buf += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  return JSON.parse(buf.split("\n")[0]);
}

export async function startOriginChild(
  env: Record<string, string> = {},
  opts: { nice?: number } = {},
): Promise<ChurnDriver> {
  // Optional scheduling priority for the origin (a real-time media process on a shared, loaded machine).
  const niced = opts.nice !== undefined && opts.nice !== 0;
  const child = new Deno.Command(niced ? "nice" : Deno.execPath(), {
    args: [
      ...(niced ? ["-n", String(opts.nice), Deno.execPath()] : []),
      "run",
      "-A",
      ...(env.CHURN_GC === "1" ? ["--v8-flags=--expose-gc"] : []),
      new URL(import.meta.url).pathname,
      "--origin",
    ],
    stdout: "piped",
    stderr: "inherit",
    env,
  }).spawn();
  const { port, pid } = await readyLine<{ port: number; pid: number }>(child);
  const base = `http://127.0.0.1:${port}`;
  const http = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(base + path, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? undefined : { "content-type": "application/json" },
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  return {
    originPid: pid,
    createSession: (sdp) => http("POST", "/sessions", { sdp, options: { mode: "echo" } }),
    deleteSession: async (id) => {
      await http("DELETE", `/sessions/${id}`);
    },
    summary: () => http("GET", "/summary"),
    get: (path) => http("GET", path),
    async terminate() {
      child.kill("SIGTERM");
      return await child.status;
    },
  };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p / 100 * sorted.length))];
}

export function summarize(values: number[]): Record<string, number> {
  const s = [...values].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    p999: percentile(s, 99.9),
    max: s.at(-1) ?? NaN,
  };
}

export interface ConnectedClient {
  client: TestClient;
  id: string;
  setupMs: number;
}

/**
 * One client session: offer → POST → answer → connected (state active event). With `speech48k` the client
 * plays that recording from when it is connected (else a tone).
 */
export async function connectClient(driver: ChurnDriver, speech48k?: Int16Array): Promise<ConnectedClient> {
  const client = new TestClient(speech48k ? { audio: "silence", pcm48k: speech48k } : { audio: "tone" });
  try {
    const offer = await client.offer();
    const t0 = performance.now();
    const { id, sdp } = await driver.createSession(offer);
    const setupMs = performance.now() - t0;
    await client.accept(sdp);
    await client.waitForEvent("state", (e) => e.state === "active", 10_000);
    if (speech48k) client.audio = "pcm";
    return { client, id, setupMs };
  } catch (err) {
    client.close();
    throw err;
  }
}

export interface ChurnOptions {
  sessions: number;
  /** Sessions run before the baseline (HTTP keep-alive pools, JIT, DB buffers are process-lived, not leaks). */
  warmup: number;
  concurrency: number;
  audioMs: number;
  /** Clients play this recording (48 kHz) instead of a tone. */
  speech48k?: Int16Array;
  checkpoints: number[];
  /** Stop starting sessions after this many seconds (the current checkpoint is still measured). */
  maxSeconds?: number;
  /** Quiet time before each measurement (default 500 ms). Idle runtime threads (tokio's blocking pool keeps
   * them 10 s) need longer to go; a supervised origin's young generation still has its start-up threads. */
  settleMs?: number;
  log?: (line: string) => void;
}

export interface ChurnResult {
  stats: Array<{ at: number; heapMiB: number; externalMiB: number; processes?: number } & ProcStats>;
  setup: Record<string, number>;
  failures: number;
  byeMissing: number;
  summary: { live: number; rows: Record<string, number> };
}

export async function runChurn(driver: ChurnDriver, o: ChurnOptions): Promise<ChurnResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  const setup: number[] = [];
  const stats: ChurnResult["stats"] = [];
  let failures = 0, byeMissing = 0, done = 0;
  const settle = () => new Promise((r) => setTimeout(r, o.settleMs ?? 500));
  await Promise.all(Array.from({ length: o.concurrency }, async (_, w) => {
    for (let i = w; i < o.warmup; i += o.concurrency) {
      const c = await connectClient(driver, o.speech48k);
      await driver.deleteSession(c.id);
      c.client.close();
    }
  }));
  await settle();
  const measure = async (at: number) => {
    const mem = await driver.get<{ heapUsed: number; external: number }>("/mem")
      .catch(() => undefined);
    return {
      at,
      ...(driver.stats?.() ?? procStats(driver.originPid)),
      heapMiB: +((mem?.heapUsed ?? 0) / 2 ** 20).toFixed(1),
      externalMiB: +((mem?.external ?? 0) / 2 ** 20).toFixed(1),
    };
  };
  stats.push(await measure(0));
  log(`   0 sessions: ${JSON.stringify(stats[0])}`);
  const one = async () => {
    let c: ConnectedClient | undefined;
    try {
      c = await connectClient(driver, o.speech48k);
      setup.push(c.setupMs);
      await new Promise((r) => setTimeout(r, o.audioMs));
      await driver.deleteSession(c.id);
      await c.client.waitForEvent("bye", () => true, 3000).catch(() => byeMissing++);
    } catch (err) {
      failures++;
      log(`session failed: ${(err as Error).message}`);
    } finally {
      c?.client.close();
    }
  };
  const t0 = performance.now();
  for (const cp of o.checkpoints.filter((c) => c > 0 && c <= o.sessions)) {
    // run until `cp` sessions are done, with `concurrency` in flight, then measure with none in flight
    const target = cp;
    const deadline = t0 + (o.maxSeconds ?? Infinity) * 1000;
    const workers = Array.from({ length: o.concurrency }, async () => {
      while (done < target && performance.now() < deadline) {
        done++;
        await one();
      }
    });
    await Promise.all(workers);
    await settle();
    const limited = done < cp;
    if (limited) log(`time limit reached after ${done} sessions`);
    const s = await measure(done);
    stats.push(s);
    log(
      `${String(done).padStart(4)} sessions: ${JSON.stringify(s)} (${
        ((performance.now() - t0) / 1000).toFixed(0)
      } s)`,
    );
    if (limited) break;
  }
  return { stats, setup: summarize(setup), failures, byeMissing, summary: await driver.summary() };
}

function arg(name: string, dflt: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : dflt;
}

async function main(): Promise<void> {
  configureLogging({ level: "error" });
  const sessions = arg("sessions", 1000);
  const concurrency = arg("concurrency", 10);
  const warmup = arg("warmup", concurrency * 2);
  const audioMs = arg("audio-ms", 1000);
  const checkpoints = [...new Set([100, 500, 1000, sessions].filter((c) => c <= sessions))].sort((a, b) =>
    a - b
  );
  const driver = await startOriginChild({
    CHURN_CAPACITY: String(Math.max(50, concurrency * 2)),
    CHURN_GC: Deno.args.includes("--gc") ? "1" : "0",
    CHURN_DB: Deno.args.includes("--disk-db") ? "disk" : "memory",
  });
  console.log(
    `churn: ${sessions} sessions (+${warmup} warm-up before the baseline), concurrency ${concurrency}, ` +
      `${audioMs} ms audio each, origin pid ${driver.originPid}`,
  );
  const r = await runChurn(driver, {
    sessions,
    warmup,
    concurrency,
    audioMs,
    checkpoints,
    maxSeconds: arg("max-seconds", 270),
  });
  const base = r.stats[0];
  console.log(
    "\n| sessions done | threads | fds | RSS MiB | Δthreads | Δfds | ΔRSS MiB | JS heap MiB | external MiB |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const s of r.stats) {
    console.log(
      `| ${s.at} | ${s.threads} | ${s.fds} | ${(s.rssKiB / 1024).toFixed(1)} | ${
        s.threads - base.threads
      } | ${s.fds - base.fds} | ${
        ((s.rssKiB - base.rssKiB) / 1024).toFixed(1)
      } | ${s.heapMiB} | ${s.externalMiB} |`,
    );
  }
  const f = (v: number) => v.toFixed(1);
  console.log(
    `\nsetup latency (POST → answer, origin direct) ms: p50 ${f(r.setup.p50)} p99 ${f(r.setup.p99)} max ${
      f(r.setup.max)
    } (n=${r.setup.n})`,
  );
  console.log(`failures: ${r.failures}, bye not received: ${r.byeMissing}`);
  console.log(
    `session rows by state/reason: ${JSON.stringify(r.summary.rows)}, live on origin: ${r.summary.live}`,
  );

  // SIGTERM with peers connected: every peer gets bye(origin_shutdown), the origin exits 0.
  const live = await Promise.all(Array.from({ length: 3 }, () => connectClient(driver)));
  const status = await driver.terminate();
  const byes = await Promise.all(
    live.map((c) => c.client.waitForEvent("bye", () => true, 5000).then((e) => e.reason).catch(() => "none")),
  );
  for (const c of live) c.client.close();
  console.log(
    `SIGTERM with ${live.length} peers connected: origin exit code ${status.code}${
      status.signal ? ` signal ${status.signal}` : ""
    }, byes: ${byes.join(",")}`,
  );
  const ok = r.failures === 0 && status.code === 0 && byes.every((b) => b === "origin_shutdown");
  await exitCleanly(() => Promise.resolve(), ok ? 0 : 1);
}

if (import.meta.main) {
  if (Deno.args.includes("--origin")) await originMain();
  else await main();
}
