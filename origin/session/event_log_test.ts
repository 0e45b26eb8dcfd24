/**
 * SessionEventLog against a real test database whose reachability a switch controls: appends wait through an
 * "outage" in order and land gap-free; an ambiguous commit is not stored twice; the bounds abandon the backlog.
 */
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { sessions, tenants } from "../../db/schema.ts";
import { withTestDatabase } from "../../db/testing.ts";
import { log } from "../../lib/log.ts";
import type { ServerEventBody } from "../../protocol/session_messages.ts";
import { EventLogAbandonedError, SessionEventLog } from "./event_log.ts";

const refused = () =>
  Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });

/** The database as the session sees it: `down` makes every call fail like postgres.js with the server gone. */
function switchable(database: Database) {
  const ctl = { down: false, failAfterCommit: 0 };
  const view = Object.create(database) as Database;
  Object.defineProperty(view, "query", {
    value: (q: Parameters<Database["query"]>[0]) => ctl.down ? Promise.reject(refused()) : database.query(q),
  });
  Object.defineProperty(view, "db", {
    get: () => ({
      transaction: async (fn: Parameters<Database["db"]["transaction"]>[0]) => {
        if (ctl.down) throw refused();
        const r = await database.db.transaction(fn);
        // The server committed, but the answer was lost with the connection.
        if (ctl.failAfterCommit > 0 && ctl.failAfterCommit--) throw refused();
        return r;
      },
    }),
  });
  return { view, ctl };
}

async function sessionRow(database: Database): Promise<string> {
  const [t] = await database.db.insert(tenants).values({ name: "t" }).returning();
  const [s] = await database.db.insert(sessions).values({ tenantId: t.id, nodeId: "n", state: "active" })
    .returning();
  return s.id;
}

const pong = (id: string): ServerEventBody => ({ type: "pong", id, server_time_ms: 1 });

Deno.test("event log: appends wait through an outage in order, then land gap-free; an ambiguous commit once", async () => {
  await withTestDatabase(async (database) => {
    const id = await sessionRow(database);
    const { view, ctl } = switchable(database);
    const elog = new SessionEventLog(view, id, { maxBacklog: 100, maxWaitMs: 10_000 }, log, () => {
      throw new Error("must not abandon");
    }, 0);
    // A serial chain, as the session runs it.
    let chain: Promise<unknown> = Promise.resolve();
    const seqs: number[] = [];
    const append = (body: ServerEventBody) => {
      const ticket = elog.enqueue();
      const p = chain.then(() => elog.append(body, ticket)).then((seq) => seqs.push(seq));
      chain = p;
      return p;
    };
    await append(pong("a"));
    ctl.down = true;
    const during = ["b", "c", "d"].map((x) => append(pong(x)));
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(seqs.length, 1, "nothing lands while the database is down");
    assert.equal(elog.waiting, 3);
    assert.equal(elog.nextSeqAfterBacklog(), 5);
    ctl.down = false;
    ctl.failAfterCommit = 1; // "b" commits but its answer is lost: retried, it must not be stored twice
    await Promise.all(during);
    await append(pong("e"));
    assert.deepEqual(seqs, [1, 2, 3, 4, 5]);
    const rows = await database.query<{ seq: number; id: string }>(
      sql`select seq, payload->>'id' as id from session_events where session_id = ${id} order by seq`,
    );
    assert.deepEqual(rows.map((r) => [Number(r.seq), r.id]), [[1, "a"], [2, "b"], [3, "c"], [4, "d"], [
      5,
      "e",
    ]]);
  });
});

Deno.test("event log: past its bound the backlog is abandoned once, and later appends fail at once", async () => {
  await withTestDatabase(async (database) => {
    const id = await sessionRow(database);
    const { view, ctl } = switchable(database);
    const why: string[] = [];
    const elog = new SessionEventLog(
      view,
      id,
      { maxBacklog: 100, maxWaitMs: 300 },
      log,
      (w) => why.push(w),
      0,
    );
    ctl.down = true;
    const t = elog.enqueue();
    await assert.rejects(elog.append(pong("x"), t), EventLogAbandonedError);
    assert.equal(why.length, 1);
    assert.match(why[0], /waited/);
    assert.equal(elog.nextSeqAfterBacklog(), 1, "an abandoned backlog is never stored");
    ctl.down = false;
    await assert.rejects(elog.append(pong("y"), elog.enqueue()), EventLogAbandonedError);
    assert.equal(why.length, 1);

    const counted = new SessionEventLog(
      view,
      id,
      { maxBacklog: 2, maxWaitMs: 60_000 },
      log,
      (w) => why.push(w),
      0,
    );
    counted.enqueue();
    counted.enqueue();
    assert.equal(counted.abandoned, false);
    counted.enqueue();
    assert.equal(counted.abandoned, true);
    assert.match(why[1], /more than 2 events/);
  });
});
