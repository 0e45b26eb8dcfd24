/**
 * Caption lag to SSE room viewers through a second edge process: confirmed caption persisted → viewer received.
 *
 *   DATABASE_URL=postgres://… deno run -A bench/room_captions.ts [--viewers 200] [--events 60] [--rate 5]
 *
 * Two `main.ts edge` processes on one throw-away PostgreSQL database; the room is created through edge 1, every
 * viewer follows `GET /v1/rooms/{id}/events` on edge 2 with a room viewer token. The publisher side is the
 * origin's own persistence call (db/rooms.ts appendRoomEvent: insert + last_seq + NOTIFY in one transaction, as
 * origin/rooms/room_host.ts does for every room event), made from this process so that "persisted" (the commit
 * returned) and "received" (the SSE frame parsed) are read on one clock. The recognizer is not in the path: the
 * lag measured starts where the caption is stored. Prints p50/p99/max lag, viewers that saw every event in seq
 * order, and the load average.
 */
import { parseArgs } from "node:util";
import { openDatabase } from "../db/client.ts";
import { createApiKey, createTenant } from "../db/api_keys.ts";
import { appendRoomEvent, createRoom } from "../db/rooms.ts";
import type { CaptionEvent } from "../protocol/room_messages.ts";
import { freePort, ParleyProcess, waitReady } from "../tests/e2e/stack_process.ts";
import { roomEventParser } from "../tests/room_sse.ts";
import { createBenchDatabase } from "./bench_db.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    viewers: { type: "string", default: "200" },
    events: { type: "string", default: "60" },
    rate: {
      type: "string",
      default: "5",
    },
  },
});
const VIEWERS = Number(values.viewers), EVENTS = Number(values.events), RATE = Number(values.rate);
const loadavg = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

const benchDb = await createBenchDatabase("parley_bench_room_captions");
const edges: ParleyProcess[] = [];
const abort = new AbortController();
let code = 0;
try {
  const env = (port: number) => ({
    DATABASE_URL: benchDb.url,
    PORT: String(port),
    RATE_LIMIT_RPS: "100000",
    RATE_LIMIT_BURST: "100000",
    LOG_LEVEL: "error",
  });
  const p1 = freePort(), p2 = freePort();
  edges.push(new ParleyProcess("edge", env(p1)));
  await edges[0].waitFor(/Parley edge ready/);
  edges.push(new ParleyProcess("edge", env(p2))); // after edge 1 migrated the database
  await edges[1].waitFor(/Parley edge ready/);
  const [u1, u2] = [`http://127.0.0.1:${p1}`, `http://127.0.0.1:${p2}`];
  await waitReady(u1).catch(() => {}); // readyz wants an origin; the SSE routes do not
  const db = await openDatabase({ url: benchDb.url, migrate: false, poolSize: 2 });
  const tenant = (await createTenant(db, "bench")).id;
  const key = (await createApiKey(db, { tenantId: tenant, name: "bench", scopes: ["sessions"] })).key;
  const roomRes = await fetch(`${u1}/v1/rooms`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "bench" }),
  });
  const room = await roomRes.json();
  if (roomRes.status !== 201) throw new Error(JSON.stringify(room));
  void createRoom;
  const tok = await (await fetch(`${u1}/v1/tokens`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ scopes: ["rooms:view"], room_id: room.id, ttl_s: 3600 }),
  })).json();

  // viewers on edge 2
  const received: Array<Map<number, number>> = [];
  const orders: boolean[] = [];
  const tJoin = performance.now();
  await Promise.all(Array.from({ length: VIEWERS }, async (_, i) => {
    const got = new Map<number, number>();
    received.push(got);
    orders[i] = true;
    let last = 0;
    const res = await fetch(`${u2}/v1/rooms/${room.id}/events`, {
      headers: { authorization: `Bearer ${tok.token}` },
      signal: abort.signal,
    });
    if (res.status !== 200) throw new Error(`viewer ${i}: ${res.status} ${await res.text()}`);
    const parse = roomEventParser((e) => {
      if (e.seq <= last) orders[i] = false;
      last = e.seq;
      got.set(e.seq, e.at);
    });
    (async () => {
      for await (const c of res.body!) parse(c);
    })().catch(() => {});
  }));
  const joinMs = performance.now() - tJoin;
  await new Promise((r) => setTimeout(r, 1000));

  // the publisher side: confirmed captions persisted at RATE per second
  const committed = new Map<number, number>();
  const load0 = loadavg();
  for (let seq = 1; seq <= EVENTS; seq++) {
    const t = performance.now();
    const ev: CaptionEvent = {
      type: "caption",
      seq,
      session_id: crypto.randomUUID(),
      segment_id: seq,
      status: "confirmed",
      text: `caption number ${seq}`,
      stable_text: `caption number ${seq}`,
      alternatives: [{ text: `caption number ${seq}`, score: 0 }],
      start_ms: seq * 1000,
      end_ms: seq * 1000 + 800,
    };
    await appendRoomEvent(db, room.id, ev);
    committed.set(seq, performance.now());
    const wait = 1000 / RATE - (performance.now() - t);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  await new Promise((r) => setTimeout(r, 3000));
  const load1 = loadavg();
  const lags: number[] = [];
  let missing = 0;
  for (const got of received) {
    for (const [seq, at] of committed) {
      const r = got.get(seq);
      if (r === undefined) missing++;
      else lags.push(r - at);
    }
  }
  const metrics = await (await fetch(`${u2}/metrics`)).text();
  const reads = metrics.match(/parley_edge_room_feed_reads_total (\d+)/)?.[1] ?? "?";
  console.log(
    `room captions via a second edge: ${VIEWERS} viewers (joined in ${
      joinMs.toFixed(0)
    } ms), ${EVENTS} events ` +
      `at ${RATE}/s`,
  );
  console.log(
    `lag persisted → received: p50 ${pct(lags, 50).toFixed(1)} ms, p99 ${pct(lags, 99).toFixed(1)} ms, ` +
      `max ${Math.max(...lags).toFixed(1)} ms (${lags.length} samples); missing ${missing}; ` +
      `viewers in seq order ${orders.filter(Boolean).length}/${VIEWERS}; edge 2 room_events reads ${reads}`,
  );
  console.log(`load average before ${load0}, after ${load1} (2 cores)`);
  const ok = pct(lags, 99) <= 1000 && missing === 0 && orders.every(Boolean);
  console.log(ok ? "goal met: p99 <= 1 s, nothing missing, in order" : "GOAL NOT MET");
  code = ok ? 0 : 1;
  await db.close();
} catch (err) {
  console.error(err);
  code = 1;
} finally {
  abort.abort();
  for (const e of edges) e.kill("SIGTERM");
  await Promise.all(edges.map((e) => e.status()));
  await benchDb.drop().catch(() => {});
}
Deno.exit(code);
