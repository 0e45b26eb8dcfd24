/**
 * Sessions end to end through real processes: a wrtc client peer (this process) → edge → origin (child
 * processes), real PGlite or PostgreSQL. Run as a plain script by tests/session_e2e_test.ts because a process
 * that had connected wrtc peers must end with an explicit Deno.exit (see origin/session/wrtc.ts).
 *
 *   deno run -A --unstable-worker-options tests/e2e/session_cases.ts
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import postgres from "postgres";
import type { ServerEvent } from "../../protocol/session_messages.ts";
import { TestClient, UdpRelay } from "../../origin/session/test_client.ts";
import { exitCleanly } from "../../origin/session/wrtc.ts";
import { call, freePort, ParleyProcess, seededDataDir, waitReady } from "./stack_process.ts";
import { withScratchPostgres } from "../../db/testing.ts";
import { readWav } from "../../origin/pipeline/wav.ts";
import type { TelopEvent, TranscriptEvent, UtteranceEvent } from "../../protocol/session_messages.ts";

const cases: Array<{ name: string; fn: () => Promise<void> }> = [];
const test = (name: string, fn: () => Promise<void>) => cases.push({ name, fn });
const pgUrl = Deno.env.get("PARLEY_TEST_DATABASE_URL") || undefined;
const clients: TestClient[] = [];
const procs: ParleyProcess[] = [];

function client(audio: "tone" | "silence" = "tone"): TestClient {
  const c = new TestClient({ audio });
  clients.push(c);
  return c;
}

async function connect(
  url: string,
  key: string,
  c: TestClient,
  options: Record<string, unknown>,
  resume?: unknown,
  relay?: UdpRelay,
) {
  let sdp = await c.offer();
  if (relay) sdp = relay.offer(sdp); // the client is reachable only through the relay
  const r = await call(url, "POST", "/v1/sessions", key, { sdp, options, ...(resume ? { resume } : {}) });
  assert.equal(r.status, 201, r.text);
  const body = r.body as { id: string; sdp: string; location: string };
  assert.equal(r.headers.get("location"), `/v1/sessions/${body.id}`);
  await c.accept(relay ? relay.answer(body.sdp) : body.sdp);
  return body.id;
}

async function active(c: TestClient): Promise<void> {
  await c.waitForEvent("state", (e) => e.state === "active", 15_000);
  await c.waitFor(() => c.control.readyState === "open", 10_000, "control channel open");
}

const seqs = (c: TestClient) => c.received.map((e: ServerEvent) => e.seq);

function assertContiguous(list: number[], from: number): void {
  list.forEach((s, i) => assert.equal(s, from + i, `seq gap/dup at ${i}: ${list.join(",")}`));
}

async function allInOne(env: Record<string, string> = {}, own = procs) {
  const dataDir = await seededDataDir();
  const port = freePort();
  const p = new ParleyProcess("all", {
    DATA_DIR: dataDir,
    PORT: String(port),
    ORIGIN_PORT: String(freePort()),
    MEDIA_TIMEOUT_MS: "4000",
    ...env,
  });
  own.push(p);
  const key = (await p.waitFor(/First admin API key[^:]*: (pk_\S+)/))[1];
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url);
  await p.waitFor(/Parley origin \S+ serving/);
  // a non-admin key with only `sessions`
  const k = await call(url, "POST", "/v1/keys", key, { name: "e2e", scopes: ["sessions"] });
  assert.equal(k.status, 201, k.text);
  return { p, url, admin: key, key: (k.body as { key: string }).key, dataDir };
}

/**
 * One process for the cases that need no setting of their own (a stack start is most of a short case): not in
 * `procs`, so the runner leaves it running between cases; the last case using it stops it and checks the exit.
 */
const sharedProcs: ParleyProcess[] = [];
let sharedStack: ReturnType<typeof allInOne> | undefined;
const shared = () => sharedStack ??= allInOne({ ICE_DISCONNECTED_GRACE_MS: "20000" }, sharedProcs);

test("all-in-one: say → audio + telop back, ping/pong, invalid control, DELETE → bye, bad input, limits", async () => {
  const s = await allInOne({ MAX_SESSIONS_PER_TENANT: "2" });
  const c = client();
  const t0 = performance.now();
  const id = await connect(s.url, s.key, c, { mode: "say" });
  await active(c);
  console.log(`  connected in ${Math.round(performance.now() - t0)} ms`);
  c.send({ type: "ping", id: "p1" });
  await c.waitForEvent("pong", (e) => e.id === "p1");
  c.send("{not json");
  await c.waitForEvent("error");
  c.send({ type: "say", text: "Hello from Parley. This is a test." });
  await c.waitForEvent("telop", () => true, 20_000);
  await c.waitFor(() => c.loudFrames > 20, 20_000, "synthesized audio at the client");
  const telop = c.received.find((e) => e.type === "telop")!;
  assert.ok(telop.type === "telop", JSON.stringify(telop));
  assert.ok(telop.words.length >= 2 && telop.duration_ms > 300, JSON.stringify(telop).slice(0, 500));
  for (const w of telop.words) {
    assert.ok(w.start_ms >= 0 && w.start_ms + w.duration_ms <= telop.duration_ms + 50);
  }
  // issue 20 (6): say/set_options with an unknown voice, and a say of control characters only, get an `error`
  // event and no audio; the session goes on
  const errorsNow = () => c.received.filter((e) => e.type === "error").length;
  const utterancesNow = () => c.received.filter((e) => e.type === "utterance").length;
  const before = { errors: errorsNow(), utterances: utterancesNow() };
  c.send({ type: "say", text: "Hello.", voice: "klingon" });
  c.send({ type: "set_options", options: { voice: "flite:nobody" } });
  c.send({ type: "say", text: "\u0001\u0002\u0007\u001b" });
  await c.waitFor(() => errorsNow() >= before.errors + 3, 10_000, "three error events");
  const errs = c.received.filter((e) => e.type === "error").slice(before.errors);
  assert.match(JSON.stringify(errs[0]), /GET \/v1\/voices/);
  assert.match(JSON.stringify(errs[1]), /GET \/v1\/voices/);
  assert.match(JSON.stringify(errs[2]), /nothing to speak/);
  c.send({ type: "ping", id: "p2" });
  await c.waitForEvent("pong", (e) => e.id === "p2");
  assert.equal(utterancesNow(), before.utterances, "no utterance for refused says");
  // session options: unknown voice, unknown keys and __proto__ are 400 before anything is stored
  for (
    const options of [
      '{"voice":"klingon"}',
      '{"mode":"say","colour":"blue"}',
      '{"__proto__":{"mode":"echo"}}',
      '{"mode":"say","speed":3}',
    ]
  ) {
    const r = await call(
      s.url,
      "POST",
      "/v1/sessions",
      s.key,
      `{"sdp":${JSON.stringify(await client().offer())},"options":${options}}`,
      { "content-type": "application/json" },
    );
    assert.equal(r.status, 400, `${options}: ${r.text}`);
    if (options.includes("klingon")) assert.match(r.text, /GET \/v1\/voices/);
  }
  // limits: one more session fits (2 per tenant), the third is refused with 429
  const c2 = client("silence");
  await connect(s.url, s.key, c2, { mode: "transcribe" });
  const c3 = client();
  const over = await call(s.url, "POST", "/v1/sessions", s.key, { sdp: await c3.offer(), options: {} });
  assert.equal(over.status, 429, over.text);
  // unauthenticated / bad SDP / bad options
  assert.equal((await call(s.url, "POST", "/v1/sessions", undefined, { sdp: "v=0" })).status, 401);
  assert.equal(
    (await call(s.url, "POST", "/v1/sessions", s.key, { sdp: "v=0\r\nm=video 9 X 1\r\n" })).status,
    400,
  );
  const badOpt = await call(s.url, "POST", "/v1/sessions", s.key, {
    sdp: await client().offer(),
    options: { mode: "x" },
  });
  assert.equal(badOpt.status, 400);
  // DELETE through the edge: bye with the reason first, then closed
  assert.equal((await call(s.url, "DELETE", `/v1/sessions/${id}`, s.key)).status, 204);
  const bye = await c.waitForEvent("bye", () => true, 10_000);
  assert.equal(bye.reason, "client_hangup");
  const g = await call(s.url, "GET", `/v1/sessions/${id}`, s.key);
  assert.deepEqual([(g.body as { state: string }).state, (g.body as { reason: string }).reason], [
    "closed",
    "client_hangup",
  ]);
  assert.equal((await call(s.url, "DELETE", `/v1/sessions/${id}`, s.key)).status, 204); // idempotent
  assertContiguous(seqs(c), 1);
  // SIGTERM with a peer connected: bye origin_shutdown, exit 0
  s.p.kill("SIGTERM");
  const bye2 = await c2.waitForEvent("bye", () => true, 15_000);
  assert.equal(bye2.reason, "origin_shutdown");
  const st = await s.p.status();
  assert.equal(st.code, 0, `exit ${st.code} signal ${st.signal}\n${s.p.stderr.slice(-2000)}`);
});

test("speech over WebRTC: a WAV of two sentences → partials then confirmed in seq order, persisted; echo voice + telop inside the played audio", async () => {
  const s = await shared();
  const wav = readWav(new URL("../fixtures/web/speech_48k.wav", import.meta.url));
  assert.equal(wav.sampleRate, 48000);
  const c = new TestClient({ audio: "silence", pcm48k: wav.samples });
  clients.push(c);
  const id = await connect(s.url, s.admin, c, { mode: "echo" });
  await active(c);
  c.audio = "pcm"; // play the recording once, from now
  const confirmed = () =>
    c.received.filter((e): e is TranscriptEvent => e.type === "transcript" && e.status === "confirmed");
  await c.waitFor(() => confirmed().length >= 2, 60_000, "two confirmed results");
  const transcripts = c.received.filter((e): e is TranscriptEvent => e.type === "transcript");
  // seq strictly +1 over everything received; per segment, partials (if any) come before its confirmed
  assertContiguous(seqs(c), 1);
  const segs = [...new Set(transcripts.map((t) => t.segment_id))];
  let segmentsWithPartials = 0;
  for (const seg of segs) {
    const evs = transcripts.filter((t) => t.segment_id === seg);
    const ci = evs.findIndex((t) => t.status === "confirmed");
    if (ci > 0) segmentsWithPartials++;
    assert.ok(evs.slice(ci + 1).every((t) => t.status !== "partial"), "no partial after its confirmed");
  }
  assert.ok(segmentsWithPartials >= 1, "at least one segment showed partials before it was confirmed");
  const heard = confirmed().map((t) => t.alternatives[0].text).join(" ");
  const words = new Set(heard.split(/\s+/));
  const known = ["this", "is", "the", "open", "and", "on"].filter((w) => words.has(w));
  assert.ok(known.length >= 3, `recognized words: "${heard}"`);
  for (const t of confirmed()) {
    assert.ok(t.end_ms > t.start_ms && t.end_ms - t.start_ms < 6000, JSON.stringify(t));
    assert.ok(t.latency_ms >= 0);
  }
  // persisted before being sent: the transcript API has the same confirmed texts
  const tr = await call(s.url, "GET", `/v1/sessions/${id}/transcript`, s.admin);
  assert.equal(tr.status, 200, tr.text);
  const stored = (tr.body as { segments: { text: string }[] }).segments.map((x) => x.text);
  assert.deepEqual(stored.slice(0, 2), confirmed().slice(0, 2).map((t) => t.alternatives[0].text));
  // echo mode: each confirmed line is spoken back; telop word timings fall inside the played audio
  const finished = () =>
    c.received.filter((e): e is UtteranceEvent => e.type === "utterance" && e.phase === "finished");
  await c.waitFor(() => finished().length >= 1, 30_000, "an echoed utterance played to the end");
  const u = finished()[0];
  const telop = c.received.find((e): e is TelopEvent =>
    e.type === "telop" && e.utterance_id === u.utterance_id
  );
  assert.ok(telop, "telop sent for the echoed utterance");
  assert.ok(telop.words.length >= 1 && telop.phonemes.length >= 1);
  assert.ok(
    Math.abs(u.played_ms - telop.duration_ms) <= 60,
    `played ${u.played_ms} vs telop ${telop.duration_ms}`,
  );
  for (const w of telop.words) {
    assert.ok(w.start_ms >= 0 && w.start_ms + w.duration_ms <= u.played_ms + 20, JSON.stringify(w));
  }
  assert.ok(c.loudFrames > 20, "echoed voice reached the client");
});

test("SESSION_CONNECT_TIMEOUT_MS reaches the session: a peer that never connects ends as ice_failed", async () => {
  // Far below the 20 s default: with the setting lost on the way, the session would still be open at the deadline.
  const s = await allInOne({ SESSION_CONNECT_TIMEOUT_MS: "1000" });
  const c = client();
  const r = await call(s.url, "POST", "/v1/sessions", s.key, { sdp: await c.offer(), options: {} });
  assert.equal(r.status, 201, r.text);
  const id = (r.body as { id: string }).id; // the answer is never applied: ICE cannot connect
  const t0 = performance.now();
  let state = "";
  let reason = "";
  while (performance.now() - t0 < 8000) {
    const g = await call(s.url, "GET", `/v1/sessions/${id}`, s.key);
    ({ state, reason } = g.body as { state: string; reason: string });
    if (state === "closed") break;
    await new Promise((res) => setTimeout(res, 200));
  }
  assert.deepEqual([state, reason], ["closed", "ice_failed"]);
  console.log(`  closed as ice_failed after ${Math.round(performance.now() - t0)} ms`);
});

test("resume through the edge: a new peer continues the seq with no gap and no duplicate", async () => {
  const s = await shared(); // its ICE_DISCONNECTED_GRACE_MS (20 s) keeps the cut session waiting for the resume
  const c = client();
  const relay = new UdpRelay();
  await relay.open();
  const id = await connect(s.url, s.key, c, { mode: "say" }, undefined, relay);
  await active(c);
  const activeAt = performance.now();
  await new Promise((r) => setTimeout(r, 3000)); // session time before the blip
  c.send({ type: "ping", id: 1 });
  await c.waitForEvent("pong", (e) => e.id === 1);
  // the client "misses" its last events: it resumes from an earlier seq
  const all = seqs(c);
  const lastSeen = all[Math.max(0, all.length - 2)] ?? 0;
  relay.cut(); // network blip: every packet dropped, nobody closes anything
  c.send({ type: "ping", id: "lost" }); // sent into the void
  await new Promise((r) => setTimeout(r, 300));
  const c2 = client();
  await connect(s.url, s.key, c2, { mode: "say" }, { session_id: id, last_seq: lastSeen });
  await c2.waitFor(() => c2.control.readyState === "open", 15_000, "resumed control channel");
  c2.send({ type: "ping", id: 2 });
  await c2.waitForEvent("pong", (e) => e.id === 2, 10_000);
  const got = seqs(c2);
  assertContiguous(got, lastSeen + 1);
  assert.ok(got.length >= 2);
  // session time goes on across the resume (it does not restart at 0 with the new peer)
  c2.send({ type: "say", text: "Welcome back." });
  const telop = await c2.waitForEvent("telop", () => true, 20_000);
  const elapsed = performance.now() - activeAt;
  assert.ok(
    telop.playout_start_ms > elapsed - 1500,
    `playout_start_ms ${telop.playout_start_ms} vs ${elapsed}`,
  );
  assert.equal((await call(s.url, "GET", `/v1/sessions/${id}`, s.key)).status, 200);
  c.close();
  relay.close();
  s.p.kill("SIGTERM");
  assert.equal((await s.p.status()).code, 0);
});

/** An edge process on PostgreSQL, ready, with the first admin key it printed (a fresh database has none). */
async function edgeOn(dbUrl: string, port: number) {
  const edge = new ParleyProcess("edge", { DATABASE_URL: dbUrl, PORT: String(port) });
  procs.push(edge);
  const key = (await edge.waitFor(/First admin API key[^:]*: (pk_\S+)/))[1];
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url);
  return { edge, key, url };
}

test("edge killed mid-session: media and events go on; a restarted edge routes DELETE (PostgreSQL)", async () => {
  if (!pgUrl) {
    console.log("  (skipped: needs PARLEY_TEST_DATABASE_URL — PGlite allows one process)");
    return;
  }
  await withScratchPostgres(pgUrl, `parley_e2e_${Deno.pid}`, async (db) => {
    const port = freePort();
    const edgeEnv = { DATABASE_URL: db, PORT: String(port) };
    const origin = new ParleyProcess("origin", {
      DATABASE_URL: db,
      ORIGIN_PORT: String(freePort()),
      MEDIA_TIMEOUT_MS: "8000",
    });
    procs.push(origin);
    await origin.waitFor(/Parley origin \S+ serving/, 90_000);
    let { edge, key, url } = await edgeOn(db, port);
    const c = client();
    const id = await connect(url, key, c, { mode: "say" });
    await active(c);
    edge.kill("SIGKILL");
    await edge.status();
    // events and media continue without the edge
    c.send({ type: "ping", id: "after-edge" });
    await c.waitForEvent("pong", (e) => e.id === "after-edge", 5000);
    c.send({ type: "say", text: "Still here." });
    const before = c.loudFrames;
    await c.waitFor(() => c.loudFrames > before + 10, 20_000, "audio after the edge died");
    edge = new ParleyProcess("edge", edgeEnv);
    procs.push(edge);
    await waitReady(url);
    assert.equal((await call(url, "DELETE", `/v1/sessions/${id}`, key)).status, 204);
    const bye = await c.waitForEvent("bye", () => true, 10_000);
    assert.equal(bye.reason, "client_hangup");
    edge.kill("SIGTERM");
    origin.kill("SIGTERM");
    assert.equal((await edge.status()).code, 0);
    assert.equal((await origin.status()).code, 0);
  });
});

test("origin SIGKILLed mid-session: a restart under its NODE_ID settles leftovers; otherwise origin_lost within the node timeout (PostgreSQL)", async () => {
  if (!pgUrl) {
    console.log("  (skipped: needs PARLEY_TEST_DATABASE_URL — PGlite allows one process)");
    return;
  }
  await withScratchPostgres(pgUrl, `parley_kill9_${Deno.pid}`, async (db) => {
    // Timeouts as ParleyProcess sets them (HEARTBEAT_MS 300, NODE_TIMEOUT_MS 1500); the sweeper runs every second.
    const nodeTimeoutMs = 1500, heartbeatMs = 300, sweepMs = 1000;
    const edgePort = freePort();
    // One unsupervised process, so SIGKILL hits the process that serves the sessions (a supervised child
    // whose supervisor dies shuts down cleanly instead: origin_shutdown).
    const startOrigin = async () => {
      const o = new ParleyProcess("origin", {
        DATABASE_URL: db,
        MEDIA_TIMEOUT_MS: "20000",
        NODE_ID: `k9-${Deno.pid}`,
        ORIGIN_RECYCLE_SESSIONS: "0",
        ORIGIN_PORT: String(freePort()),
      });
      procs.push(o);
      await o.waitFor(/Parley origin \S+ serving/, 90_000);
      return o;
    };
    const sql = postgres(db, { max: 1, onnotice: () => {} });
    const row = async (id: string) => {
      const [r] = await sql`select state, reason from sessions where id = ${id}`;
      return { state: r.state as string, reason: r.reason as string | null };
    };
    try {
      const [first, { edge, key, url }] = await Promise.all([startOrigin(), edgeOn(db, edgePort)]);
      const live = async () => {
        const c = client();
        const id = await connect(url, key, c, { mode: "echo" });
        await active(c);
        c.send({ type: "ping", id: "alive" });
        await c.waitForEvent("pong", (e) => e.id === "alive", 5000);
        return id;
      };

      // 1. kill -9 while no edge sweeps (the edge is stopped first): the session is left `active`; the origin
      //    restarted under the same NODE_ID settles it as origin_lost before it serves.
      const idA = await live();
      edge.kill("SIGTERM");
      assert.equal((await edge.status()).code, 0);
      first.kill("SIGKILL");
      await first.status();
      assert.deepEqual(
        await row(idA),
        { state: "active", reason: null },
        "left behind: nobody settled it yet",
      );
      const second = await startOrigin();
      // "serving" is printed after the start-up settle ran.
      assert.deepEqual(await row(idA), { state: "closed", reason: "origin_lost" });

      // 2. kill -9 with a live session and no restart: the edges' sweeper settles it once the node's heartbeat
      //    is stale, within the node timeout (plus one heartbeat, one sweep and slack for a loaded machine).
      const edge2 = new ParleyProcess("edge", { DATABASE_URL: db, PORT: String(edgePort) });
      procs.push(edge2);
      await waitReady(url);
      const idB = await live();
      second.kill("SIGKILL");
      await second.status();
      const killedAt = performance.now();
      while ((await row(idB)).state !== "closed") {
        assert.ok(performance.now() - killedAt < 20_000, "the killed origin's session was never settled");
        await new Promise((r) => setTimeout(r, 100));
      }
      const settledMs = performance.now() - killedAt;
      assert.equal((await row(idB)).reason, "origin_lost");
      const st = (await call(url, "GET", `/v1/sessions/${idB}`, key)).body as { reason?: string };
      assert.equal(st.reason, "origin_lost", "the API says so too");
      const bound = nodeTimeoutMs + heartbeatMs + sweepMs + 3000;
      console.log(
        `  killed origin's session settled as origin_lost ${Math.round(settledMs)} ms after SIGKILL`,
      );
      assert.ok(settledMs < bound, `settled after ${Math.round(settledMs)} ms (bound ${bound})`);
    } finally {
      await sql.end();
    }
  });
});

test("origin recycling: successors take over, live sessions finish on the old process, SIGTERM exits 0 (PostgreSQL)", async () => {
  if (!pgUrl) {
    console.log("  (skipped: needs PARLEY_TEST_DATABASE_URL — PGlite allows one process)");
    return;
  }
  await withScratchPostgres(pgUrl, `parley_recycle_${Deno.pid}`, async (dbUrl) => {
    const db = postgres(dbUrl, { max: 1, onnotice: () => {} });
    try {
      const port = freePort();
      const originPort = freePort();
      // Recycle every 3 sessions: "recycling soon" after the 2nd (the successor starts loading), stop accepting
      // after the 3rd once the successor serves. This loop goes faster than a model load, so a generation may
      // serve past its count; a refused POST (503) would fail connect().
      const supervisor = new ParleyProcess("origin", {
        DATABASE_URL: dbUrl,
        ORIGIN_PORT: String(originPort),
        NODE_ID: "rc",
        ORIGIN_RECYCLE_SESSIONS: "3",
        MEDIA_TIMEOUT_MS: "60000",
      });
      procs.push(supervisor);
      await supervisor.waitFor(/Parley origin rc\.0 serving/, 90_000);
      const { edge, key, url } = await edgeOn(dbUrl, port);
      // The first session stays connected across two recycles.
      const first = client();
      const firstId = await connect(url, key, first, { mode: "say" });
      await active(first);
      const nodeOf = async (id: string) =>
        (await db`select node_id from sessions where id = ${id}`)[0].node_id;
      const served: string[] = [await nodeOf(firstId)];
      // Short sessions, one after another, until later generations have taken three.
      const loopStart = performance.now();
      for (let i = 0; served.filter((n) => n !== "rc.0").length < 3; i++) {
        assert.ok(performance.now() - loopStart < 120_000, `no takeover within 2 min: ${served}`);
        const c = client();
        // connect() asserts 201: a refusal (503 while no generation accepts) fails the test.
        const id = await connect(url, key, c, { mode: "say" });
        await active(c);
        c.send({ type: "ping", id: `p${i}` });
        await c.waitForEvent("pong", (e) => e.id === `p${i}`);
        served.push(await nodeOf(id));
        assert.equal((await call(url, "DELETE", `/v1/sessions/${id}`, key)).status, 204);
        await c.waitForEvent("bye", () => true, 10_000);
        c.close();
        await new Promise((r) => setTimeout(r, 300));
      }
      console.log(`  sessions served by: ${served.join(" ")}`);
      assert.equal(served[0], "rc.0");
      assert.ok(new Set(served).size >= 2, `a later generation took sessions: ${served}`);
      assert.match(supervisor.stdout, /Parley origin rc\.0 recycling after \d+ sessions/);
      // The first session lives on its draining process: media and events still flow.
      first.send({ type: "ping", id: "still-here" });
      await first.waitForEvent("pong", (e) => e.id === "still-here", 5000);
      const [rc0] = await db`select draining, stopped_at from nodes where id = 'rc.0'`;
      assert.equal(rc0.draining, true);
      assert.equal(rc0.stopped_at, null, "rc.0 keeps running while it has a session");
      // Its end lets the old process exit (node row stopped, by the process itself).
      assert.equal((await call(url, "DELETE", `/v1/sessions/${firstId}`, key)).status, 204);
      assert.equal((await first.waitForEvent("bye", () => true, 10_000)).reason, "client_hangup");
      const t0 = performance.now();
      while ((await db`select stopped_at from nodes where id = 'rc.0'`)[0].stopped_at === null) {
        assert.ok(performance.now() - t0 < 20_000, "rc.0 did not exit after its last session");
        await new Promise((r) => setTimeout(r, 200));
      }
      const rows = await db`select state, reason, count(*)::int as n from sessions group by 1, 2`;
      assert.deepEqual(rows.map((r) => [r.state, r.reason, r.n]), [[
        "closed",
        "client_hangup",
        served.length,
      ]]);
      // SIGTERM on the supervisor: every child drains and exits, then the supervisor exits 0.
      const kids = Deno.readTextFileSync(`/proc/${supervisor.pid}/task/${supervisor.pid}/children`).trim()
        .split(/\s+/).filter(Boolean).map(Number);
      assert.ok(kids.length >= 1, "the supervisor has a live child");
      supervisor.kill("SIGTERM");
      assert.equal((await supervisor.status()).code, 0);
      for (const pid of kids) assert.ok(!existsSync(`/proc/${pid}`), `child ${pid} is gone`);
      edge.kill("SIGTERM");
      assert.equal((await edge.status()).code, 0);
    } finally {
      await db.end();
    }
  });
});

test("origin recycling: a child whose supervisor was SIGKILLed shuts down instead of living on (PostgreSQL)", async () => {
  if (!pgUrl) {
    console.log("  (skipped: needs PARLEY_TEST_DATABASE_URL — PGlite allows one process)");
    return;
  }
  const supervisor = new ParleyProcess("origin", {
    DATABASE_URL: pgUrl,
    ORIGIN_PORT: String(freePort()),
    NODE_ID: `orphan-${Deno.pid}`,
    ORIGIN_RECYCLE_SESSIONS: "100",
  });
  procs.push(supervisor);
  await supervisor.waitFor(/Parley origin orphan-\d+\.0 serving/, 90_000);
  const kids = Deno.readTextFileSync(`/proc/${supervisor.pid}/task/${supervisor.pid}/children`).trim()
    .split(/\s+/).filter(Boolean).map(Number);
  assert.equal(kids.length, 1);
  supervisor.kill("SIGKILL");
  await supervisor.status();
  const t0 = performance.now();
  while (existsSync(`/proc/${kids[0]}`)) {
    const stat = Deno.readTextFileSync(`/proc/${kids[0]}/stat`);
    if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) break; // exited, reaped by init later
    assert.ok(performance.now() - t0 < 30_000, "orphaned origin child still running after 30 s");
    await new Promise((r) => setTimeout(r, 200));
  }
});

// ---- tiny runner (explicit exit: see header)
// With PARLEY_TEST_DATABASE_URL (CI's PostgreSQL pass) only the cases that need PostgreSQL run: the others use
// their own PGlite process and already ran in the first pass.
const only = Deno.args.length ? Deno.args : pgUrl ? ["(PostgreSQL)"] : [];
let failed = 0;
for (const c of cases) {
  if (only.length && !only.some((o) => c.name.includes(o))) continue;
  const t0 = performance.now();
  try {
    await c.fn();
    console.log(`ok   ${c.name} (${Math.round(performance.now() - t0)} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${c.name}\n${e instanceof Error ? e.stack : e}`);
    for (const p of [...procs, ...sharedProcs]) {
      console.log(`--- ${p.role} stderr tail:\n${p.stderr.slice(-1500)}`);
    }
  } finally {
    for (const cl of clients.splice(0)) cl.close();
    for (const p of procs.splice(0)) {
      p.kill("SIGKILL");
      await p.status();
    }
  }
}
for (const p of sharedProcs) {
  p.kill("SIGKILL"); // still running only if its last case failed or did not run
  await p.status();
}
console.log(`${failed === 0 ? "all passed" : `${failed} failed`}`);
await exitCleanly(() => Promise.resolve(), failed ? 1 : 0);
