/**
 * A live session (real wrtc peers on loopback, SessionManager, PGlite or PARLEY_TEST_DATABASE_URL) whose
 * database goes away for a while: the event path of issue 20's outage fix, at the session level.
 *
 * The database the session sees is a view whose every query and transaction fails like postgres.js with the
 * server gone while `down` is set (the driver's "cannot connect" error). With the fix, the session's events
 * wait in order, unsent, and are stored and then sent once the database is back (gap-free seq, the client's
 * events equal the stored log); past the documented bound the session ends with `bye` `database_unavailable`.
 * Before the fix a failed append dropped its event: the client never got those pongs and never got a bye.
 *
 * Not a `*_test.ts` file: wrtc cases run in a child process (origin/session/wrtc_cases.ts explains why);
 * tests/session_outage_test.ts runs it.
 *
 *   deno run -A tests/session_outage_cases.ts [name-substring...]
 */
import assert from "node:assert/strict";
import type { Database } from "../db/client.ts";
import { openTestDatabase } from "../db/testing.ts";
import { tenants } from "../db/schema.ts";
import { eventsAfter, sessionStatus } from "../db/sessions.ts";
import type { ServerEvent } from "../protocol/session_messages.ts";
import { SessionManager } from "../origin/session/session_manager.ts";
import type { SessionConfig } from "../origin/session/session.ts";
import { TestClient } from "../origin/session/test_client.ts";
import { caseList, runCases } from "../origin/session/wrtc_cases.ts";

const { cases, test } = caseList();

let dbPromise: Promise<Database> | undefined;
const database = () => dbPromise ??= openTestDatabase();

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const refused = () =>
  Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });

/** The database as the origin sees it; `ctl.down` makes every call fail as if PostgreSQL were stopped. */
function switchable(db: Database): { view: Database; ctl: { down: boolean } } {
  const ctl = { down: false };
  const view = Object.create(db) as Database;
  Object.defineProperty(view, "query", {
    value: (q: Parameters<Database["query"]>[0]) => ctl.down ? Promise.reject(refused()) : db.query(q),
  });
  Object.defineProperty(view, "db", {
    get: () =>
      new Proxy(db.db, {
        get(target, prop, receiver) {
          if (ctl.down) {
            return () => {
              throw refused();
            };
          }
          const v = Reflect.get(target, prop, receiver);
          return typeof v === "function" ? v.bind(target) : v;
        },
      }),
  });
  return { view, ctl };
}

const FAST: Partial<SessionConfig> = {
  iceDisconnectedGraceMs: 300,
  mediaTimeoutMs: 30_000,
  connectTimeoutMs: 8000,
  byeLingerMs: 20,
};

async function setup(config: Partial<SessionConfig>) {
  const db = await database();
  const { view, ctl } = switchable(db);
  const [t] = await db.db.insert(tenants).values({ name: "outage-test" }).returning();
  const m = new SessionManager({
    database: view,
    nodeId: "outage-node",
    capacity: 10,
    sessionConfig: { ...FAST, ...config },
  });
  const client = new TestClient({ audio: "tone" });
  const id = crypto.randomUUID();
  const { sdp } = await m.createSession(await client.offer(), { mode: "echo" }, t.id, id);
  await client.accept(sdp);
  await client.waitForEvent("state", (e) => e.state === "active", 10_000);
  return { db, m, ctl, client, id };
}

const pongIds = (events: ServerEvent[]) =>
  events.filter((e) => e.type === "pong").map((e) => (e as { id: unknown }).id);

test("outage: events wait unsent, then are stored and sent in order, gap-free; the session lives", async () => {
  const { db, m, ctl, client, id } = await setup({ eventBacklogMax: 100, eventMaxWaitMs: 30_000 });
  try {
    client.send({ type: "ping", id: "before" });
    await client.waitForEvent("pong", (e) => e.id === "before");
    const sentBefore = client.received.length;
    ctl.down = true;
    const during = ["d1", "d2", "d3", "d4", "d5"];
    for (const p of during) client.send({ type: "ping", id: p });
    await sleep(1500);
    // Sent only once stored: nothing reaches the client while the database is down.
    assert.equal(client.received.length, sentBefore, "no event is sent before it is stored");
    assert.equal(m.session(id)?.state, "active", "a database outage does not end a healthy session");
    ctl.down = false;
    await client.waitFor(() => pongIds(client.received).length === 1 + during.length, 10_000, "late pongs");
    client.send({ type: "ping", id: "after" });
    await client.waitForEvent("pong", (e) => e.id === "after", 5000);
    assert.deepEqual(pongIds(client.received), ["before", ...during, "after"], "every event, in order");
    assert.deepEqual(client.received.map((e) => e.seq), client.received.map((_, i) => i + 1), "gap-free seq");
    assert.deepEqual(await eventsAfter(db, id, 0), client.received, "the stored log is what the client got");
  } finally {
    await m.end(id, "admin").catch(() => {});
    client.close();
  }
});

test("outage past the backlog bound: bye database_unavailable at once; the row is closed once the database is back", async () => {
  const { db, m, ctl, client, id } = await setup({ eventBacklogMax: 3, eventMaxWaitMs: 30_000 });
  try {
    ctl.down = true;
    for (let i = 0; i < 6; i++) client.send({ type: "ping", id: `x${i}` });
    const bye = await client.waitForEvent("bye", () => true, 10_000);
    assert.equal(bye.reason, "database_unavailable");
    assert.equal(pongIds(client.received).length, 0, "the abandoned events were never sent");
    await m.session(id)?.closed;
    ctl.down = false;
    const t0 = performance.now();
    while ((await sessionStatus(db, id))?.state !== "closed" && performance.now() - t0 < 10_000) {
      await sleep(100);
    }
    const st = await sessionStatus(db, id);
    assert.equal(st?.state, "closed");
    assert.equal(st?.reason, "database_unavailable");
  } finally {
    ctl.down = false;
    client.close();
  }
});

test("outage past the wait bound: bye database_unavailable, not silence", async () => {
  const { m, ctl, client, id } = await setup({ eventBacklogMax: 100, eventMaxWaitMs: 800 });
  try {
    ctl.down = true;
    client.send({ type: "ping", id: "w" });
    const bye = await client.waitForEvent("bye", () => true, 10_000);
    assert.equal(bye.reason, "database_unavailable");
    assert.equal(pongIds(client.received).length, 0);
    await m.session(id)?.closed;
  } finally {
    ctl.down = false;
    client.close();
  }
});

async function main(): Promise<never> {
  return await runCases("session outage cases", cases, Deno.args, async () => {
    if (dbPromise) await (await dbPromise).close();
  });
}

if (import.meta.main) await main();
