/**
 * Room listener churn THROUGH THE EDGE: the real `main.ts all` process (edge + origin, PGlite in a temp dir),
 * one room, N listener cycles on the WHEP routes (tests/e2e/room_churn.ts: POST /v1/rooms/{id}/listeners →
 * connected with audio → DELETE), `--concurrency` at a time. Prints the origin process's threads, fds and RSS
 * at the checkpoints (no churn listener in flight, after --settle-ms), their growth, setup latency (POST →
 * answer) and that the room ends with no listener.
 *
 *   deno run -A bench/rooms_churn.ts [--cycles 300] [--concurrency 10] [--checkpoints 100,200,300]
 *     [--settle-ms 3000] [--warmup 20]
 */
import { exitCleanly } from "../origin/session/wrtc.ts";
import { call, freePort, ParleyProcess, waitReady } from "../tests/e2e/stack_process.ts";
import { runRoomChurn } from "../tests/e2e/room_churn.ts";
import { summarize } from "./churn.ts";

function arg(name: string, dflt: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : dflt;
}

async function main(): Promise<void> {
  const cycles = Number(arg("cycles", "300"));
  const concurrency = Number(arg("concurrency", "10"));
  const port = freePort();
  const dataDir = await Deno.makeTempDir({ prefix: "parley-bench-" });
  const proc = new ParleyProcess("all", {
    PORT: String(port),
    ORIGIN_PORT: String(freePort()),
    DATA_DIR: dataDir,
    ASR_ENGINE: "ctc",
    LOG_LEVEL: "error",
    RATE_LIMIT_RPS: "10000",
    RATE_LIMIT_BURST: "10000",
    HEARTBEAT_MS: "2000",
    NODE_TIMEOUT_MS: "20000",
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    const key = (await proc.waitFor(/First admin API key[^:]*: (\S+)/, 180_000))[1];
    await waitReady(url, 180_000);
    let r = await call(url, "POST", "/v1/rooms", key, { name: "churn", options: { max_listeners: 500 } });
    if (r.status !== 201) throw new Error(`POST /v1/rooms → ${r.status} ${r.text}`);
    const room = r.body as { id: string };
    console.log(
      `room listener churn through the edge: ${cycles} joins/leaves, concurrency ${concurrency}; load ${
        Deno.readTextFileSync("/proc/loadavg").split(" ")[0]
      } on ${navigator.hardwareConcurrency} cores`,
    );
    const res = await runRoomChurn({
      url,
      key,
      roomId: room.id,
      originPid: proc.pid,
      cycles,
      concurrency,
      warmup: Number(arg("warmup", "20")),
      checkpoints: arg("checkpoints", "100,200,300").split(",").map(Number),
      settleMs: Number(arg("settle-ms", "3000")),
      log: console.log,
    });
    console.log("\n| listeners joined/left | threads | fds | RSS MiB |");
    console.log("|---|---|---|---|");
    for (const s of res.stats) {
      console.log(`| ${s.at} | ${s.threads} | ${s.fds} | ${(s.rssKiB / 1024).toFixed(1)} |`);
    }
    const base = res.stats[0], last = res.stats.at(-1)!;
    console.log(
      `\nΔ threads ${last.threads - base.threads}, Δ fds ${last.fds - base.fds}, Δ RSS ${
        ((last.rssKiB - base.rssKiB) / 1024).toFixed(1)
      } MiB (${((last.rssKiB - base.rssKiB) / Math.max(1, last.at)).toFixed(1)} KiB per listener)`,
    );
    if (res.stats.length > 2) {
      // The baseline can still hold the database's start-up peak (PGlite returns it slowly): growth from the
      // first checkpoint on is the churn's own.
      const first = res.stats[1];
      console.log(
        `RSS from ${first.at} to ${last.at} listeners: ${
          ((last.rssKiB - first.rssKiB) / 1024).toFixed(1)
        } MiB (${
          ((last.rssKiB - first.rssKiB) / Math.max(1, last.at - first.at)).toFixed(1)
        } KiB per listener)`,
      );
    }
    const s = summarize(res.setupMs);
    console.log(
      `setup through the edge (POST → answer) ms: p50 ${s.p50.toFixed(0)}, p99 ${s.p99.toFixed(0)}, max ${
        s.max.toFixed(0)
      } (n=${s.n}); failures ${res.failures.length}${
        res.failures.length ? `: ${res.failures.slice(0, 3).join("; ")}` : ""
      }`,
    );
    r = await call(url, "GET", `/v1/rooms/${room.id}`, key);
    console.log(`room after the churn: ${JSON.stringify((r.body as { live?: unknown }).live)}`);
  } finally {
    proc.kill("SIGTERM");
    await proc.status();
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
  await exitCleanly(() => Promise.resolve(), 0);
}

if (import.meta.main) await main();
