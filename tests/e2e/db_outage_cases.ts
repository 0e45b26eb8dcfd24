/**
 * PostgreSQL outages while sessions talk, through real processes: a private PostgreSQL cluster (.ci/pg.sh, so it
 * can be stopped and started), `main.ts edge` and `main.ts origin` on it, and 3 wrtc client peers in this process
 * speaking a recorded sentence again and again. PostgreSQL is stopped for 10 s, then for 25 s, with sentences
 * spoken during each outage. Checked: no session is closed (no `origin_lost`), the API answers 503 + Retry-After
 * + JSON during the outage, every spoken sentence's confirmed transcript is stored, each client received every
 * event (late, in order) with a gap-free seq equal to the stored log, and DELETE afterwards ends each session.
 * Run as a plain script by tests/db_outage_e2e_test.ts (a process that had wrtc peers must exit explicitly).
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import type { ServerEvent, TranscriptEvent } from "../../protocol/session_messages.ts";
import { TestClient } from "../../origin/session/test_client.ts";
import { exitCleanly } from "../../origin/session/wrtc.ts";
import { readWav } from "../../origin/pipeline/wav.ts";
import { call, freePort, ParleyProcess, waitReady } from "./stack_process.ts";
import { privatePostgres } from "../../db/testing.ts";

const SESSIONS = 3;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const confirmed = (c: TestClient) =>
  c.received.filter((e): e is TranscriptEvent => e.type === "transcript" && e.status === "confirmed");

const pgDir = await Deno.makeTempDir({ prefix: "parley-outage-pg-" });
const pgPort = freePort();
const procs: ParleyProcess[] = [];
const clients: TestClient[] = [];
let failed = false;
try {
  const url = await privatePostgres("start", pgDir, pgPort);
  const port = freePort();
  const common = {
    DATABASE_URL: url,
    HEARTBEAT_MS: "500",
    NODE_TIMEOUT_MS: "3000",
    // The clients pause between sentences; media timeouts are not what this test is about.
    MEDIA_TIMEOUT_MS: "600000",
  };
  const edge = new ParleyProcess("edge", { ...common, PORT: String(port) });
  procs.push(edge);
  const admin = (await edge.waitFor(/First admin API key[^:]*: (pk_\S+)/, 60_000))[1];
  const origin = new ParleyProcess("origin", {
    ...common,
    ORIGIN_PORT: String(freePort()),
    ORIGIN_RECYCLE_SESSIONS: "0",
    NODE_ID: "outage-origin",
  });
  procs.push(origin);
  const base = `http://127.0.0.1:${port}`;
  await waitReady(base);
  await origin.waitFor(/Parley origin \S+ serving/, 240_000);

  const sentence = readWav(new URL("../fixtures/speech/one_phrase_48k.wav", import.meta.url)).samples;
  const ids: string[] = [];
  for (let i = 0; i < SESSIONS; i++) {
    const c = new TestClient({ audio: "silence" });
    clients.push(c);
    const r = await call(base, "POST", "/v1/sessions", admin, {
      sdp: await c.offer(),
      options: { mode: "transcribe" },
    });
    assert.equal(r.status, 201, r.text);
    ids.push((r.body as { id: string }).id);
    await c.accept((r.body as { sdp: string }).sdp);
  }
  for (const c of clients) await c.waitForEvent("state", (e) => e.state === "active", 20_000);
  // Session time (the transcripts' start_ms/end_ms) runs from `active`; each client's offset is calibrated on
  // the first sentence below.
  const activeAt = clients.map(() => performance.now());
  const sentenceMs = sentence.length / 48;

  /** Per client: the session-time span of every sentence played. */
  const plays: Array<Array<[number, number]>> = clients.map(() => []);
  let spoken = 0;
  const say = () => {
    spoken++;
    clients.forEach((c, i) => {
      c.play(sentence);
      const at = performance.now() - activeAt[i];
      plays[i].push([at, at + sentenceMs]);
    });
  };
  /** Sentences (of those played so far) without a confirmed transcript overlapping them. */
  const unheard = (i: number) =>
    plays[i].filter(([a, b]) =>
      !confirmed(clients[i]).some((t) => t.start_ms < b + 1000 && t.end_ms > a - 1000)
    );
  const allHeard = async (what: string, timeoutMs: number) => {
    for (const [i, c] of clients.entries()) {
      await c.waitFor(() => unheard(i).length === 0, timeoutMs, `${what} (client ${i})`).catch((e) => {
        const spans = (l: Array<[number, number]>) => JSON.stringify(l.map((p) => p.map(Math.round)));
        throw new Error(
          `${e.message}: sentences at ${spans(unheard(i))} ms have no confirmed transcript; confirmed: ${
            spans(confirmed(c).map((t) => [t.start_ms, t.end_ms]))
          }`,
        );
      });
    }
  };
  say();
  for (const [i, c] of clients.entries()) {
    await c.waitFor(() => confirmed(c).length >= 1, 30_000, "the first sentence");
    activeAt[i] -= confirmed(c)[0].start_ms - plays[i][0][0];
    plays[i][0] = [confirmed(c)[0].start_ms, confirmed(c)[0].start_ms + sentenceMs];
  }
  await allHeard("the first sentence", 30_000);

  const figures: string[] = [];
  for (const outageS of [10, 25]) {
    const before = clients.map((c) => c.received.length);
    await privatePostgres("stop", pgDir, pgPort);
    const stoppedAt = performance.now();
    // The API during the outage: 503 + Retry-After + the JSON error body (never 500).
    await sleep(1000);
    const during = await call(base, "GET", `/v1/sessions/${ids[0]}`, admin);
    assert.equal(during.status, 503, during.text);
    assert.ok(during.headers.get("retry-after"), "Retry-After during the outage");
    assert.equal((during.body as { error: { code: string } }).error.code, "unavailable");
    // Sentences spoken while the database is down, spaced so each is its own segment.
    const duringOutage = outageS >= 20 ? 3 : 2;
    for (let i = 0; i < duringOutage; i++) {
      say();
      await sleep(Math.floor((outageS * 1000 - 2000) / duringOutage));
    }
    const sentDuring = clients.map((c, i) => c.received.length - before[i]);
    while (performance.now() - stoppedAt < outageS * 1000) await sleep(100);
    await privatePostgres("start", pgDir, pgPort);
    const restartedAt = performance.now();
    await allHeard(`sentences spoken during the ${outageS} s outage`, 30_000);
    const caughtUpMs = performance.now() - restartedAt;
    // Long enough for every edge sweep to have judged the origin (node timeout + heartbeat + sweep period).
    await sleep(5000);
    for (const id of ids) {
      const r = await call(base, "GET", `/v1/sessions/${id}`, admin);
      assert.equal(r.status, 200, r.text);
      assert.equal((r.body as { state: string }).state, "active", `after the ${outageS} s outage: ${r.text}`);
    }
    const late = clients.map((c, i) => c.received.length - before[i] - sentDuring[i]);
    figures.push(
      `${outageS} s outage: events delivered while down ${sentDuring.join("/")}, delivered after restart ` +
        `${late.join("/")}; all sentences' confirmed transcripts at the clients ${
          Math.round(caughtUpMs)
        } ms ` +
        `after PostgreSQL restarted`,
    );
  }

  // Every client: no bye, gap-free seq from 1, exactly the stored log, every sentence confirmed and stored.
  const db = postgres(url, { max: 1, onnotice: () => {} });
  try {
    for (const [i, c] of clients.entries()) {
      assert.ok(!c.received.some((e: ServerEvent) => e.type === "bye"), "no session was closed");
      const seqs = c.received.map((e) => e.seq);
      seqs.forEach((s, k) => assert.equal(s, k + 1, `client ${i}: seq gap/dup at ${k}: ${seqs.join(",")}`));
      const stored = await db`select seq from session_events where session_id = ${ids[i]} order by seq`;
      assert.deepEqual(stored.map((r) => Number(r.seq)), seqs, `client ${i}: received = stored log`);
      assert.deepEqual(unheard(i), [], `client ${i}: every sentence spoken has its confirmed transcript`);
      const segs = await db`select text from transcript_segments where session_id = ${ids[i]} order by seq`;
      assert.deepEqual(segs.map((r) => r.text), confirmed(c).map((t) => t.alternatives[0].text));
      const [row] = await db`select state, reason from sessions where id = ${ids[i]}`;
      assert.deepEqual([row.state, row.reason], ["active", null]);
    }
  } finally {
    await db.end();
  }
  for (const [i, id] of ids.entries()) {
    assert.equal((await call(base, "DELETE", `/v1/sessions/${id}`, admin)).status, 204);
    const bye = await clients[i].waitForEvent("bye", () => true, 10_000);
    assert.equal(bye.reason, "client_hangup");
  }
  console.log(`sentences spoken: ${spoken} per session, ${SESSIONS} sessions`);
  for (const f of figures) console.log(f);
  console.log("ok   PostgreSQL outages of 10 s and 25 s: no session lost, no event lost");
} catch (e) {
  failed = true;
  console.log(`FAIL PostgreSQL outages\n${e instanceof Error ? e.stack : e}`);
  for (const p of procs) console.log(`--- ${p.role} stderr tail:\n${p.stderr.slice(-3000)}`);
} finally {
  for (const c of clients) c.close();
  for (const p of procs) {
    p.kill("SIGKILL");
    await p.status();
  }
  await privatePostgres("stop", pgDir, pgPort).catch(() => "");
  await Deno.remove(pgDir, { recursive: true }).catch(() => {});
}
await exitCleanly(() => Promise.resolve(), failed ? 1 : 0);
