/**
 * Real wrtc peers on loopback: a TestClient (same process, main isolate) against a SessionManager with a real
 * (PGlite or PARLEY_TEST_DATABASE_URL) database. One database for the whole file (opening one is the slow
 * part); each test uses its own tenant and manager and leaves no session, sink, track or timer behind.
 *
 * Not a `*_test.ts` file on purpose: session_test.ts runs it as a child `deno run` script with the tiny runner
 * at the bottom. Measured: a `deno test` process that had connected wrtc peers segfaults (exit 139) when it
 * ends, even with every peer, sink, track and the keepalive peer closed, and `Deno.exit` inside a test is
 * reported as a failure (or segfaults too while the keepalive lives). A plain script that closes everything
 * and then calls `Deno.exit` ends cleanly, so the cases run here and exit 1 if any failed.
 *
 *   deno run -A origin/session/session_cases.ts [name-substring...]
 */
import assert from "node:assert/strict";
import type { Database } from "../../db/client.ts";
import { openTestDatabase } from "../../db/testing.ts";
import { sessionEvents, tenants } from "../../db/schema.ts";
import { eventsAfter, sessionStatus } from "../../db/sessions.ts";
import { ApiError } from "../../lib/errors.ts";
import type { CloseReason, ServerEvent } from "../../protocol/session_messages.ts";
import { OriginBusyError } from "../services.ts";
import { procStats } from "./proc_stats.ts";
import { SessionManager } from "./session_manager.ts";
import { Session, type SessionConfig } from "./session.ts";
import { TestClient, UdpRelay } from "./test_client.ts";
import { caseList, runCases } from "./wrtc_cases.ts";
import { eq } from "drizzle-orm";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const { cases, test } = caseList();

let dbPromise: Promise<Database> | undefined;
const database = () => dbPromise ??= openTestDatabase();

const FAST: Partial<SessionConfig> = {
  iceDisconnectedGraceMs: 300,
  mediaTimeoutMs: 1500,
  connectTimeoutMs: 4000,
  byeLingerMs: 20,
};

async function tenant(db: Database): Promise<string> {
  const [t] = await db.db.insert(tenants).values({ name: "session-test" }).returning();
  return t.id;
}

async function manager(config: Partial<SessionConfig> = {}, capacity = 50) {
  const db = await database();
  return {
    db,
    m: new SessionManager({
      database: db,
      nodeId: "test-node",
      capacity,
      sessionConfig: { ...FAST, ...config },
    }),
  };
}

interface Connected {
  client: TestClient;
  id: string;
  relay?: UdpRelay;
}

async function connect(
  m: SessionManager,
  tenantId: string,
  o: { audio?: "tone" | "silence"; relay?: boolean; id?: string; resumeAfter?: number } = {},
): Promise<Connected> {
  const client = new TestClient({ audio: o.audio ?? "tone" });
  let relay: UdpRelay | undefined;
  if (o.relay) {
    relay = new UdpRelay();
    await relay.open();
  }
  let offer = await client.offer();
  if (relay) offer = relay.offer(offer);
  const id = o.id ?? crypto.randomUUID();
  const { sdp } = await m.createSession(
    offer,
    { mode: "echo" },
    tenantId,
    id,
    o.resumeAfter !== undefined ? { last_seq: o.resumeAfter } : undefined,
  );
  await client.accept(relay ? relay.answer(sdp) : sdp);
  await client.waitForEvent("state", (e) => e.state === "active");
  return { client, id, relay };
}

function seqs(events: ServerEvent[]): number[] {
  return events.map((e) => e.seq);
}

async function expectClosed(db: Database, id: string, reason: CloseReason): Promise<void> {
  const st = await sessionStatus(db, id);
  assert.equal(st?.state, "closed");
  assert.equal(st?.reason, reason);
}

test("offer/answer, echo audio both ways, events + control channels, close(admin)", async () => {
  const { db, m } = await manager();
  const tid = await tenant(db);
  const t0 = performance.now();
  const { client, id } = await connect(m, tid);
  const connectedMs = performance.now() - t0;
  const s = m.session(id) as Session;
  assert.ok(s instanceof Session);
  assert.equal(s.state, "active");
  assert.equal(m.count(), 1);
  assert.equal((await sessionStatus(db, id))?.state, "active");
  // Answer is non-trickle with host candidates.
  assert.ok(connectedMs < 5000);

  // audio both ways: the client's 440 Hz tone comes back (echo) with energy
  await client.waitFor(() => client.loudFrames >= 30, 5000, "echoed tone");
  assert.ok(s.inbound!.frames > 50);
  assert.ok(s.outbound.frames > 50);

  // control: ping → pong, invalid → error (session survives), say → utterance events, set_options → state
  client.send({ type: "ping", id: "p1" });
  client.send("{not json");
  client.send({ type: "mute", muted: "yes" });
  client.send({ type: "nope" });
  client.send(new Uint8Array([1, 2, 3]));
  client.send({ type: "say", text: "hello there" });
  client.send({ type: "set_options", options: { language: "fr" } });
  const pong = await client.waitForEvent("pong");
  assert.equal(pong.id, "p1");
  await client.waitFor(() => client.received.filter((e) => e.type === "error").length >= 4, 5000, "4 errors");
  await client.waitForEvent("utterance", (e) => e.phase === "finished");
  await client.waitForEvent("state", (e) => e.options?.language === "fr");
  assert.equal(s.state, "active");

  await m.end(id, "admin");
  const bye = await client.waitForEvent("bye");
  assert.equal(bye.reason, "admin");
  assert.equal(s.state, "closed");
  assert.equal(m.count(), 0);
  await expectClosed(db, id, "admin");
  // seq strictly +1 from 1, and what the client saw is exactly what was persisted
  assert.deepEqual(seqs(client.received), client.received.map((_, i) => i + 1));
  const persisted = await eventsAfter(db, id, 0);
  assert.deepEqual(persisted, client.received);
  // after close: calls reject, end() is idempotent
  await assert.rejects(() => s.emit({ type: "pong", id: 1, server_time_ms: 0 }), /closed/);
  assert.equal((await m.end(id, "client_hangup"))?.reason, "admin");
  assert.equal(m.get(id)?.state, "closed");
  client.close();
});

test("bye on control → client_hangup; ping after close does not resurrect", async () => {
  const { db, m } = await manager();
  const tid = await tenant(db);
  const { client, id } = await connect(m, tid);
  const s = m.session(id)!;
  client.send({ type: "bye" });
  const bye = await client.waitForEvent("bye");
  assert.equal(bye.reason, "client_hangup");
  await s.closed;
  await expectClosed(db, id, "client_hangup");
  const before = (await eventsAfter(db, id, 0)).length;
  try {
    client.send({ type: "ping", id: 2 });
  } catch { /* channel already closed: fine */ }
  await new Promise((r) => setTimeout(r, 150));
  assert.equal((await eventsAfter(db, id, 0)).length, before);
  assert.equal(s.state, "closed");
  client.close();
});

test("control flood: rate-limited with one error event, session stays up", async () => {
  // Long media timeout: on a loaded machine persisting 100+ pongs can delay inbound frames past FAST's 1.5 s.
  const { db, m } = await manager({ mediaTimeoutMs: 30_000 });
  const tid = await tenant(db);
  const { client, id } = await connect(m, tid);
  for (let i = 0; i < 300; i++) client.send({ type: "ping", id: i });
  const limited = await client.waitForEvent("error", (e) => e.code === "rate_limited");
  assert.ok(limited.seq > 1);
  await new Promise((r) => setTimeout(r, 300));
  const pongs = client.received.filter((e) => e.type === "pong").length;
  assert.ok(pongs >= 100 && pongs < 300, `${pongs} pongs`);
  assert.equal(m.session(id)?.state, "active", JSON.stringify(m.get(id)));
  await m.end(id, "admin");
  client.close();
});

test("client closes its peer abruptly → client_hangup (its data channels go away)", async () => {
  const { db, m } = await manager();
  const tid = await tenant(db);
  const { client, id } = await connect(m, tid);
  const s = m.session(id)!;
  client.close();
  await s.closed;
  await expectClosed(db, id, "client_hangup");
  const events = await eventsAfter(db, id, 0);
  assert.equal(events.at(-1)?.type, "bye");
});

test("media_timeout when audio stops; mute + silence never times out; unmute restarts the window", async () => {
  const { db, m } = await manager({ mediaTimeoutMs: 1200 });
  const tid = await tenant(db);
  const a = await connect(m, tid);
  const b = await connect(m, tid);
  const sa = m.session(a.id)!, sb = m.session(b.id)!;
  // b says muted first, then both go silent
  b.client.send({ type: "mute", muted: true });
  await b.client.waitForEvent("state", (e) => e.muted === true);
  a.client.audio = "silence";
  b.client.audio = "silence";
  const t0 = performance.now();
  await sa.closed;
  const took = performance.now() - t0;
  assert.ok(took >= 1000 && took < 4000, `media_timeout after ${took} ms`);
  assert.equal((await a.client.waitForEvent("bye")).reason, "media_timeout");
  await expectClosed(db, a.id, "media_timeout");
  // b: muted and silent well past the timeout, still active
  await new Promise((r) => setTimeout(r, 1500 - Math.min(1500, performance.now() - t0) + 300));
  assert.equal(sb.state, "active");
  // unmute while still silent: a full new window, then media_timeout
  const t1 = performance.now();
  b.client.send({ type: "mute", muted: false });
  await sb.closed;
  assert.ok(performance.now() - t1 >= 1000, "unmute restarted the timeout window");
  await expectClosed(db, b.id, "media_timeout");
  a.client.close();
  b.client.close();
});

test("network cut: ice_disconnected_timeout after the grace, ice_failed when the grace is longer", async () => {
  const short = await manager({ iceDisconnectedGraceMs: 300, mediaTimeoutMs: 60_000 });
  const long = await manager({ iceDisconnectedGraceMs: 60_000, mediaTimeoutMs: 60_000 });
  const tid = await tenant(short.db);
  const a = await connect(short.m, tid, { relay: true });
  const b = await connect(long.m, tid, { relay: true });
  const sa = short.m.session(a.id)!, sb = long.m.session(b.id)!;
  a.relay!.cut();
  b.relay!.cut();
  await sa.closed;
  assert.equal(sa.reason, "ice_disconnected_timeout");
  await expectClosed(short.db, a.id, "ice_disconnected_timeout");
  assert.equal(sb.state, "active", "the long-grace session survives a transient disconnect");
  // libwebrtc decides when a cut path is `failed` (usually ~15–30 s); on a loaded machine it sometimes never
  // does within a minute, so only a close it reports is checked: it must map to ice_failed, nothing else.
  const failed = await Promise.race([sb.closed.then(() => true), sleep(45_000).then(() => false)]);
  if (failed) {
    assert.equal(sb.reason, "ice_failed");
    await expectClosed(long.db, b.id, "ice_failed");
    // bye was persisted even though the client could not receive it
    assert.equal((await eventsAfter(long.db, b.id, 0)).at(-1)?.type, "bye");
  } else {
    console.log(
      "  (libwebrtc did not report ICE failed within 45 s; the session correctly stayed in its grace)",
    );
    assert.equal(sb.state, "active");
    await long.m.end(b.id, "admin");
  }
  for (const c of [a, b]) {
    c.client.close();
    c.relay!.close();
  }
});

test("never connected within connectTimeoutMs → ice_failed", async () => {
  const { db, m } = await manager({ connectTimeoutMs: 500 });
  const tid = await tenant(db);
  const client = new TestClient();
  const id = crypto.randomUUID();
  await m.createSession(await client.offer(), { mode: "echo" }, tid, id); // answer never applied
  const s = m.session(id)!;
  await s.closed;
  await expectClosed(db, id, "ice_failed");
  client.close();
});

test("closeAll(origin_shutdown): bye to every peer, all closed, new sessions refused", async () => {
  const { db, m } = await manager();
  const tid = await tenant(db);
  const peers = await Promise.all([connect(m, tid), connect(m, tid), connect(m, tid)]);
  await m.closeAll("origin_shutdown");
  assert.equal(m.count(), 0);
  for (const p of peers) {
    assert.equal((await p.client.waitForEvent("bye")).reason, "origin_shutdown");
    await expectClosed(db, p.id, "origin_shutdown");
    p.client.close();
  }
  const c = new TestClient();
  await assert.rejects(
    () => m.createSession(c.pc.localDescription?.sdp ?? "v=0", {}, tid, crypto.randomUUID()),
    OriginBusyError,
  );
  c.close();
});

test("bad offers and over-limit: 400/413/409/503, nothing leaks", async () => {
  const { db, m } = await manager({}, 1);
  const tid = await tenant(db);
  const bad = async (sdp: unknown, status: number, re: RegExp) => {
    const err = await m.createSession(sdp as string, {}, tid, crypto.randomUUID()).then(
      () => assert.fail("accepted"),
      (e) => e,
    );
    assert.ok(err instanceof ApiError, String(err));
    assert.equal(err.status, status);
    assert.match(err.message, re);
  };
  const client = new TestClient();
  const good = await client.offer();
  await bad("", 400, /empty/);
  await bad(42, 400, /not text/);
  await bad("v=0\r\n" + "a=x\r\n".repeat(14000), 413, /limit/);
  await bad("hello", 400, /v=0/);
  await bad(good.replace(/m=audio[^\r]*\r\n/, ""), 400, /audio m-line/);
  await bad(good.replace(/m=application[^\r]*\r\n/, ""), 400, /data channel/);
  await bad(good.replace(/a=fingerprint:[^\r]*\r\n/g, ""), 400, /fingerprint/);
  await bad(good.replace(/a=ice-ufrag:[^\r]*\r\n/g, "a=ice-ufrag:x\r\n"), 400, /rejected/);
  const opt = await m.createSession(good, { mode: "karaoke" }, tid, crypto.randomUUID()).catch((e) => e);
  assert.equal(opt.status, 400);
  const notUuid = await m.createSession(good, {}, tid, "abc").catch((e) => e);
  assert.equal(notUuid.status, 400);
  assert.equal(m.count(), 0);

  // capacity 1: the second concurrent session is refused with OriginBusyError (→ 503, edge may retry)
  const first = await connect(m, tid);
  const second = new TestClient();
  await assert.rejects(() => m.createSession(good, {}, tid, crypto.randomUUID()), OriginBusyError);
  // an id that already exists → 409
  await m.end(first.id, "admin");
  const dup = await m.createSession(good, {}, tid, first.id).catch((e) => e);
  assert.equal(dup.status, 409);
  // resume of a closed session → 409; of an unknown one → 404
  const closedResume = await m.createSession(good, {}, tid, first.id, { last_seq: 0 }).catch((e) => e);
  assert.equal(closedResume.status, 409);
  const unknown = await m.createSession(good, {}, tid, crypto.randomUUID(), { last_seq: 0 }).catch((e) => e);
  assert.equal(unknown.status, 404);
  assert.equal(m.count(), 0);
  first.client.close();
  second.close();
  client.close();
});

test("resume: missed events from Postgres first, then live ones, no gap, no duplicate", async () => {
  const { db, m } = await manager({ iceDisconnectedGraceMs: 60_000 });
  const tid = await tenant(db);
  const a = await connect(m, tid, { relay: true });
  const old = m.session(a.id)!;
  for (let i = 0; i < 5; i++) await old.emit({ type: "pong", id: `a${i}`, server_time_ms: 0 });
  await a.client.waitFor(() => a.client.received.length >= 6, 3000, "6 events");
  const lastSeen = a.client.received.at(-1)!.seq;
  // The network drops: events emitted now are persisted but never reach the old client.
  a.relay!.cut();
  for (let i = 0; i < 4; i++) await old.emit({ type: "pong", id: `lost${i}`, server_time_ms: 0 });

  // Live events keep coming while the client resumes (they land before, during and after the replay).
  let live = 0;
  let stop = false;
  const pump = (async () => {
    while (!stop) {
      const cur = m.session(a.id);
      if (cur && cur.state !== "closing" && cur.state !== "closed") {
        await cur.emit({ type: "pong", id: `live${live++}`, server_time_ms: 0 }).catch(() => {});
      }
      await new Promise((r) => setTimeout(r, 3));
    }
  })();
  const b = await connect(m, tid, { id: a.id, resumeAfter: lastSeen });
  assert.equal(old.state, "closed");
  assert.equal(old.detached, true);
  const fresh = m.session(a.id)!;
  assert.notEqual(fresh, old);
  await new Promise((r) => setTimeout(r, 200));
  stop = true;
  await pump;
  await m.end(a.id, "client_hangup");
  await b.client.waitForEvent("bye");

  const got = seqs(b.client.received);
  const expected = Array.from({ length: got.length }, (_, i) => lastSeen + 1 + i);
  assert.deepEqual(got, expected, "contiguous from last_seq + 1");
  const ids = b.client.received.filter((e) => e.type === "pong").map((e) => (e as { id: string }).id);
  assert.deepEqual(ids.slice(0, 4), ["lost0", "lost1", "lost2", "lost3"]);
  assert.ok(live > 3, "live events were emitted during the resume");
  const all = await db.db.select().from(sessionEvents).where(eq(sessionEvents.sessionId, a.id));
  assert.equal(all.length, got.at(-1));
  await expectClosed(db, a.id, "client_hangup");
  a.client.close();
  a.relay!.close();
  b.client.close();
});

test("20 sessions connect → audio → close: threads and fds back to baseline", async () => {
  const { db, m } = await manager();
  const tid = await tenant(db);
  // warm-up: the first sessions create process-lived things (keepalive factory, PGlite buffers, timers)
  for (let i = 0; i < 2; i++) {
    const c = await connect(m, tid);
    await m.end(c.id, "admin");
    c.client.close();
  }
  await new Promise((r) => setTimeout(r, 200));
  const before = procStats();
  for (let i = 0; i < 20; i++) {
    const c = await connect(m, tid);
    await c.client.waitFor(() => c.client.receivedFrames > 5, 3000, "audio");
    await m.end(c.id, i % 2 ? "admin" : "client_hangup");
    c.client.close();
  }
  await new Promise((r) => setTimeout(r, 300));
  const after = procStats();
  console.log("threads/fds before", before, "after", after);
  assert.equal(m.count(), 0);
  assert.ok(after.threads - before.threads <= 0, `threads ${before.threads} → ${after.threads}`);
  assert.ok(after.fds - before.fds <= 0, `fds ${before.fds} → ${after.fds}`);
});

async function main(): Promise<never> {
  return await runCases("session cases", cases, Deno.args, async () => {
    if (dbPromise) await (await dbPromise).close();
  });
}

if (import.meta.main) await main();
