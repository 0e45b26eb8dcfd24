/**
 * A WebSocket StreamSession rides out a database outage exactly like a WebRTC session (the shared SessionCore
 * and its event log): events produced while the database cannot be reached are not sent, then arrive late,
 * in order, with consecutive seq, each already stored; the session stays up and closes normally after. A real
 * socket pair (Deno.serve + WebSocket) and a real test database whose reachability a switch controls.
 */
import assert from "node:assert/strict";
import type { Database } from "../../db/client.ts";
import { claimSession, eventsAfter, getSessionRow } from "../../db/sessions.ts";
import { createTenant } from "../../db/api_keys.ts";
import { withTestDatabase } from "../../db/testing.ts";
import { configureLogging } from "../../lib/log.ts";
import type { ServerEvent } from "../../protocol/session_messages.ts";
import { StreamSession } from "./stream_session.ts";

configureLogging({ level: "error" });

const refused = () =>
  Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });

/** The database as the session sees it: while `down`, every call fails like postgres.js with the server gone. */
function switchable(database: Database) {
  const ctl = { down: false };
  const view = Object.create(database) as Database;
  Object.defineProperty(view, "query", {
    value: (q: Parameters<Database["query"]>[0]) => ctl.down ? Promise.reject(refused()) : database.query(q),
  });
  Object.defineProperty(view, "db", {
    get: () =>
      new Proxy(database.db, {
        get(target, prop) {
          if (ctl.down) return () => Promise.reject(refused());
          const v = Reflect.get(target, prop, target);
          return typeof v === "function" ? v.bind(target) : v;
        },
      }),
  });
  return { view, ctl };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test({
  name: "stream session: events wait through a database outage, then arrive in order, stored, gap-free",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withTestDatabase(async (database) => {
      const tenant = await createTenant(database, "ws");
      const id = crypto.randomUUID();
      await claimSession(database, {
        id,
        tenantId: tenant.id,
        nodeId: "n",
        mode: "echo",
        options: { mode: "echo" },
        kind: "websocket",
      });
      const { view, ctl } = switchable(database);
      let session: StreamSession | undefined;
      const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
        const { socket, response } = Deno.upgradeWebSocket(req);
        session = new StreamSession({
          id,
          tenantId: tenant.id,
          nodeId: "n",
          options: { mode: "echo" } as StreamSession["options"],
          database: view,
          socket,
          sampleRate: 16000,
          config: { mediaTimeoutMs: 60_000 },
        });
        session.start().catch(() => {});
        return response;
      });
      const ws = new WebSocket(`ws://127.0.0.1:${server.addr.port}/`);
      const events: ServerEvent[] = [];
      const closed = new Promise<CloseEvent>((r) => ws.addEventListener("close", (e) => r(e)));
      ws.onmessage = (e) => {
        if (typeof e.data === "string") events.push(JSON.parse(e.data));
      };
      const waitFor = async (pred: () => boolean, what: string, ms = 20_000) => {
        const end = performance.now() + ms;
        while (!pred()) {
          if (performance.now() > end) throw new Error(`${what}: ${JSON.stringify(events)}`);
          await sleep(20);
        }
      };
      try {
        await waitFor(() => events.some((e) => e.type === "state" && e.state === "active"), "active");
        const pongs = () => events.filter((e) => e.type === "pong").map((e) => e.type === "pong" && e.id);
        ws.send(JSON.stringify({ type: "ping", id: "before" }));
        await waitFor(() => pongs().length === 1, "pong before the outage");

        ctl.down = true;
        for (const i of [1, 2, 3]) ws.send(JSON.stringify({ type: "ping", id: `during-${i}` }));
        await sleep(700);
        assert.deepEqual(pongs(), ["before"], "nothing is sent while it cannot be stored");
        assert.equal(session!.state, "active", "the session stays up through the outage");

        ctl.down = false;
        await waitFor(() => pongs().length === 4, "the waiting events after the outage");
        assert.deepEqual(pongs(), ["before", "during-1", "during-2", "during-3"]);
        for (let i = 1; i < events.length; i++) {
          assert.equal(events[i].seq, events[i - 1].seq + 1, "gap-free");
        }
        const stored = await eventsAfter(database, id, 0);
        assert.deepEqual(stored.map((e) => e.seq), events.map((e) => e.seq), "every sent event is stored");

        ws.send(JSON.stringify({ type: "bye" }));
        const c = await closed;
        assert.equal(c.code, 1000, c.reason);
        assert.equal(events.at(-1)?.type, "bye");
        await session!.closed;
        assert.equal((await getSessionRow(database, id))?.state, "closed");
        assert.equal((await getSessionRow(database, id))?.kind, "websocket");
      } finally {
        ws.close();
        await session?.close("admin");
        await server.shutdown();
      }
    }),
});
