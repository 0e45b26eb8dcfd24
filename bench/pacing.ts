/**
 * Outbound pacing benchmark: 20 concurrent echo sessions (default) against one origin in a child process (the
 * origin from bench/churn.ts with per-frame gap recording on). Each session's RTCAudioSource is fed by the
 * shared drift-corrected 10 ms clock; this reports the distribution of gaps between consecutive frames handed
 * to each source while all sessions run (goal: p99 ≤ 20 ms).
 *
 *   deno run -A bench/pacing.ts [--sessions 20] [--seconds 20]
 */
import { configureLogging } from "../lib/log.ts";
import { exitCleanly } from "../origin/session/wrtc.ts";
import { connectClient, type ConnectedClient, startOriginChild } from "./churn.ts";

function arg(name: string, dflt: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : dflt;
}

configureLogging({ level: "error" });
const sessions = arg("sessions", 20);
const seconds = arg("seconds", 20);
const driver = await startOriginChild({ CHURN_RECORD_GAPS: "1", CHURN_CAPACITY: String(sessions + 5) });
console.log(`pacing: ${sessions} concurrent echo sessions for ${seconds} s, origin pid ${driver.originPid}`);
const clients: ConnectedClient[] = [];
for (let i = 0; i < sessions; i += 5) {
  clients.push(
    ...await Promise.all(Array.from({ length: Math.min(5, sessions - i) }, () => connectClient(driver))),
  );
}
await new Promise((r) => setTimeout(r, seconds * 1000));
type Pacing = {
  sessions: number;
  frames: number;
  gaps: Record<string, number>;
  over20: number;
  maxGap: number;
  clockSkips: number;
};
const p = await driver.get<Pacing>("/pacing");
const echoed = clients.map((c) => c.client.loudFrames);
for (const c of clients) await driver.deleteSession(c.id);
for (const c of clients) c.client.close();
const status = await driver.terminate();
const f = (v: number) => v.toFixed(2);
console.log("\n| sessions | frames | gap p50 ms | p90 | p99 | p99.9 | max | gaps > 20 ms | clock skips |");
console.log("|---|---|---|---|---|---|---|---|---|");
console.log(
  `| ${p.sessions} | ${p.frames} | ${f(p.gaps.p50)} | ${f(p.gaps.p90)} | ${f(p.gaps.p99)} | ${
    f(p.gaps.p999)
  } | ${f(p.gaps.max)} | ${p.over20} (${
    (100 * p.over20 / Math.max(1, p.gaps.n)).toFixed(3)
  } %) | ${p.clockSkips} |`,
);
console.log(
  `client-side: loud (echoed) frames per session min ${Math.min(...echoed)} max ${Math.max(...echoed)}; ` +
    `origin exit ${status.code}`,
);
const ok = p.gaps.p99 <= 20 && status.code === 0;
console.log(ok ? "goal met: p99 gap ≤ 20 ms" : "goal NOT met (p99 gap > 20 ms or origin exit ≠ 0)");
await exitCleanly(() => Promise.resolve(), ok ? 0 : 1);
