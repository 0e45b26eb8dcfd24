/**
 * Session churn THROUGH THE EDGE: the real `main.ts all` process (edge + origin, PGlite in a temp dir) or, with
 * DATABASE_URL, separate `main.ts origin` and `main.ts edge` processes on PostgreSQL. Each session: offer →
 * POST /v1/sessions (edge → signed internal call → origin → answer after ICE gathering) → connected → 1 s of
 * audio → DELETE. Prints setup latency (POST → answer) p50/p99 and the origin's threads/fds/RSS at checkpoints.
 *
 *   deno run -A --unstable-worker-options bench/edge_setup.ts [--sessions 300] [--concurrency 10] [--audio-ms 1000]
 *     [--recycle N] [--settle-ms 12000] [--mode transcribe|echo|say] [--checkpoints 100,500,1000]
 *     [--engine ctc|sphinx|whisper|auto]
 *
 * `--engine` sets ASR_ENGINE (default ctc); with sphinx each client plays a human recording (pocketsphinx-
 * testdata LibriVox) for --audio-ms, so every session opens a recognition stream and decodes speech.
 *
 * With DATABASE_URL, `main.ts origin` is the supervisor (origin/supervisor.ts) and the figures are for its
 * whole process tree (supervisor + one or two origin generations); --recycle N sets ORIGIN_RECYCLE_SESSIONS
 * (0: one plain origin process). Each measurement waits --settle-ms with no session in flight, so idle runtime
 * threads have exited.
 */
import { type ChurnDriver, runChurn } from "./churn.ts";
import { exitCleanly } from "../origin/session/wrtc.ts";
import { procTreeStats } from "../origin/session/proc_stats.ts";
import { call, freePort, ParleyProcess, waitReady } from "../tests/e2e/stack_process.ts";
import { librivoxUtterances, readWav16k } from "../origin/asr/sphinx/sphinx_testdata.ts";
import { floatToInt16, int16ToFloat, resampleAll } from "../lib/audio/resampler.ts";

/** The first LibriVox recording of pocketsphinx-testdata at 48 kHz, cut or padded to `ms`. */
function humanSpeech48k(ms: number): Int16Array {
  const utt = librivoxUtterances()[0];
  const pcm = floatToInt16(resampleAll(int16ToFloat(readWav16k(utt.path)), 16000, 48000));
  const out = new Int16Array(48 * ms);
  out.set(pcm.subarray(0, out.length));
  return out;
}

function arg(name: string, dflt: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : dflt;
}

async function main(): Promise<void> {
  const sessions = arg("sessions", 300);
  const concurrency = arg("concurrency", 10);
  const audioMs = arg("audio-ms", 1000);
  const pg = Deno.env.get("DATABASE_URL");
  const modeArg = Deno.args.indexOf("--mode");
  const mode = modeArg >= 0 ? Deno.args[modeArg + 1] : "transcribe";
  const port = freePort();
  const engineArg = Deno.args.indexOf("--engine");
  const engine = engineArg >= 0 ? Deno.args[engineArg + 1] : "ctc";
  const speech48k = engine === "ctc" ? undefined : humanSpeech48k(audioMs);
  const common = {
    ASR_ENGINE: engine,
    RATE_LIMIT_RPS: "10000",
    RATE_LIMIT_BURST: "10000",
    LOG_LEVEL: "error",
    NODE_CAPACITY: "200",
    // a loaded shared machine delays heartbeats: the defaults, not the tests' quick failover values
    HEARTBEAT_MS: "2000",
    NODE_TIMEOUT_MS: "6000",
  };
  // PostgreSQL: `main.ts origin` supervises origin children and replaces one every --recycle sessions (default:
  // the ORIGIN_RECYCLE_SESSIONS default, 250); --recycle 0 runs one unsupervised origin process.
  const recycle: Record<string, string> = Deno.args.includes("--recycle")
    ? { ORIGIN_RECYCLE_SESSIONS: String(arg("recycle", 0)) }
    : {};
  const procs: ParleyProcess[] = [];
  let origin: ParleyProcess;
  let edge: ParleyProcess;
  if (pg) {
    origin = new ParleyProcess("origin", {
      ...common,
      ...recycle,
      DATABASE_URL: pg,
      ORIGIN_PORT: String(freePort()),
    });
    procs.push(origin);
    await origin.waitFor(/Parley origin \S+ serving/, 180_000);
    edge = new ParleyProcess("edge", { ...common, DATABASE_URL: pg, PORT: String(port) });
    procs.push(edge);
  } else {
    origin = edge = new ParleyProcess("all", {
      ...common,
      DATA_DIR: await Deno.makeTempDir({ prefix: "parley-bench-" }),
      PORT: String(port),
      ORIGIN_PORT: String(freePort()),
    });
    procs.push(origin);
  }
  const key = pg && Deno.env.get("PARLEY_ADMIN_KEY")
    ? Deno.env.get("PARLEY_ADMIN_KEY")!
    : (await edge.waitFor(/First admin API key[^:]*: (pk_\S+)/, 180_000))[1];
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, 180_000);
  await origin.waitFor(/Parley origin \S+ serving/, 180_000);
  const ids: string[] = [];
  const driver: ChurnDriver = {
    originPid: origin.pid,
    // the whole tree: a supervised origin is the supervisor plus one or two generations of children
    stats: () => procTreeStats(origin.pid),
    async createSession(sdp) {
      const r = await call(url, "POST", "/v1/sessions", key, { sdp, options: { mode } });
      if (r.status !== 201) throw new Error(`POST /v1/sessions → ${r.status} ${r.text}`);
      const b = r.body as { id: string; sdp: string };
      ids.push(b.id);
      return b;
    },
    async deleteSession(id) {
      const r = await call(url, "DELETE", `/v1/sessions/${id}`, key);
      if (r.status !== 204) throw new Error(`DELETE → ${r.status}`);
    },
    async summary() {
      const rows: Record<string, number> = {};
      let live = 0;
      for (const id of ids) {
        const r = await call(url, "GET", `/v1/sessions/${id}`, key);
        const b = r.body as { state: string; reason: string | null };
        const k = `${b.state}/${b.reason}`;
        rows[k] = (rows[k] ?? 0) + 1;
        if (b.state !== "closed") live++;
      }
      return { live, rows };
    },
    get: () => Promise.reject(new Error("no /mem through the edge")),
    async terminate() {
      for (const p of procs) p.kill("SIGTERM");
      const st = await origin.status();
      for (const p of procs) await p.status();
      return st;
    },
  };
  console.log(
    `edge-routed churn: ${sessions} sessions (${mode}, ASR_ENGINE=${engine}), concurrency ${concurrency}, ${audioMs} ms audio, ${
      pg ? "PostgreSQL, separate edge/origin processes" : "PGlite, all-in-one process"
    }`,
  );
  const cpArg = Deno.args.indexOf("--checkpoints");
  const wanted = cpArg >= 0 ? Deno.args[cpArg + 1].split(",").map(Number) : [100, 500, 1000];
  const checkpoints = [...new Set([...wanted, sessions].filter((c) => c <= sessions))].sort((a, b) => a - b);
  const settleMs = arg("settle-ms", 12_000);
  const r = await runChurn(driver, {
    sessions,
    warmup: concurrency * 2,
    concurrency,
    audioMs,
    speech48k,
    checkpoints,
    settleMs,
  });
  console.log("\n| sessions | processes | threads | fds | RSS MiB |");
  console.log("|---|---|---|---|---|");
  for (const s of r.stats) {
    console.log(
      `| ${s.at} | ${s.processes ?? 1} | ${s.threads} | ${s.fds} | ${(s.rssKiB / 1024).toFixed(1)} |`,
    );
  }
  const base = r.stats[0], last = r.stats.at(-1)!;
  console.log(
    `\nΔ threads ${last.threads - base.threads}, Δ fds ${last.fds - base.fds}, Δ RSS ${
      ((last.rssKiB - base.rssKiB) / 1024).toFixed(1)
    } MiB`,
  );
  console.log(
    `setup latency through the edge (POST → answer), ms: p50 ${r.setup.p50.toFixed(1)}, p90 ${
      r.setup.p90.toFixed(1)
    }, p99 ${r.setup.p99.toFixed(1)}, max ${r.setup.max.toFixed(1)} (n=${r.setup.n})`,
  );
  console.log(`failures ${r.failures}, bye missing ${r.byeMissing}, rows ${JSON.stringify(r.summary.rows)}`);
  const st = await driver.terminate();
  console.log(`origin SIGTERM exit code ${st.code}${st.signal ? ` signal ${st.signal}` : ""}`);
  await exitCleanly(() => Promise.resolve(), 0);
}

if (import.meta.main) await main();
