/**
 * Phone calls as sessions (run as a child by sip_session_test.ts: the session manager loads wrtc, and a
 * `deno test` process that loaded it can crash when it ends), release rules, against SIPp as the caller: the real SipUas → SipGateway →
 * SipSession → SessionManager on a test database (PGlite, or PostgreSQL with PARLEY_TEST_DATABASE_URL), with
 * the built-in echo pipeline (no models needed). Each test reads the session's row and persisted timeline.
 */
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { createTenant } from "../../db/api_keys.ts";
import { claimSession, eventsAfter, getSessionRow } from "../../db/sessions.ts";
import { createSipNumber } from "../../db/sip.ts";
import { createRoom, roomEventsAfter } from "../../db/rooms.ts";
import { RoomHost } from "../rooms/room_host.ts";
import { RoomManager } from "../rooms/room_manager.ts";
import { ListenerClient } from "../rooms/test_listener.ts";
import { openTestDatabase } from "../../db/testing.ts";
import { configureLogging } from "../../lib/log.ts";
import type { ServerEvent } from "../../protocol/session_messages.ts";
import { EchoPipeline } from "../session/echo.ts";
import { SessionManager } from "../session/session_manager.ts";
import dgram from "node:dgram";
import { freePort, rtpRange, runSipp, sippOk, waitFor } from "../sip/testdata/harness.ts";
import { buildRtcp } from "../sip/rtcp.ts";
import { buildRtp } from "../sip/rtp_packet.ts";
import { SipUas } from "../sip/uas.ts";
import { SipGateway } from "./sip_gateway.ts";
import { closeReasonOf, SipSession } from "./sip_session.ts";
import { caseList, runCases } from "../session/wrtc_cases.ts";

configureLogging({ level: "error" });
const { cases, test } = caseList();

interface Rig {
  db: Database;
  uas: SipUas;
  sessions: SessionManager;
  tenantId: string;
  /** The room the number publishes into (rig({ room: true })). */
  roomId?: string;
  roomHost: RoomHost;
  /** What each pipeline saw at its close: was the bye already persisted, were the call's ports still held. */
  atPipelineClose: Array<{ byePersisted: boolean; portsLeased: number }>;
  close(): Promise<void>;
}

async function rig(
  opts: { mediaTimeoutMs?: number; number?: string; maxSessionsPerTenant?: number; room?: boolean } = {},
): Promise<Rig> {
  const db = await openTestDatabase();
  const tenant = await createTenant(db, "sip");
  const roomId = opts.room
    ? (await createRoom(db, { tenantId: tenant.id, name: "calls", options: {} })).id
    : undefined;
  if (opts.number !== "") {
    await createSipNumber(db, {
      tenantId: tenant.id,
      number: opts.number ?? "100",
      options: { mode: "echo", ...(roomId ? { room: roomId } : {}) },
    });
  }
  const roomHost = new RoomHost({ database: db, nodeId: "sip-test", manager: new RoomManager({}) });
  const sessions = new SessionManager({ database: db, nodeId: "sip-test", capacity: 10, rooms: roomHost });
  const atPipelineClose: Rig["atPipelineClose"] = [];
  const ref: { uas?: SipUas } = {};
  const gateway = new SipGateway({
    database: db,
    sessions,
    nodeId: "sip-test",
    realm: "parley",
    maxSessionsPerTenant: opts.maxSessionsPerTenant,
    rooms: roomHost,
    pipelineFactory: (host) => {
      const p = new EchoPipeline(host, { delayMs: 100 });
      const close = p.close.bind(p);
      p.close = async () => {
        const evs = await eventsAfter(db, host.sessionId, 0);
        atPipelineClose.push({
          byePersisted: evs.at(-1)?.type === "bye",
          portsLeased: ref.uas!.ports.leased,
        });
        return close();
      };
      return p;
    },
  });
  const uas = ref.uas = new SipUas({
    host: "127.0.0.1",
    port: 0,
    app: gateway,
    allowAnyone: true,
    timers: { t1: 100, t2: 400, t4: 500 },
    mediaTimeoutMs: opts.mediaTimeoutMs ?? 5000,
    ...rtpRange(3),
  });
  await uas.listen();
  return {
    db,
    uas,
    sessions,
    tenantId: tenant.id,
    roomId,
    roomHost,
    atPipelineClose,
    async close() {
      await sessions.close("origin_shutdown");
      await uas.close();
      await roomHost.close();
      await db.close();
    },
  };
}

async function sipSessionIds(db: Database): Promise<string[]> {
  const rows = await db.query<{ id: string }>(
    sql`select id from sessions where kind = 'sip' order by created_at`,
  );
  return rows.map((r) => r.id);
}

async function closedRow(db: Database, id: string) {
  let row;
  const end = Date.now() + 5000;
  for (;;) {
    row = await getSessionRow(db, id);
    if (row?.state === "closed" || Date.now() > end) return row;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function timeline(db: Database, id: string): Promise<ServerEvent[]> {
  return await eventsAfter(db, id, 0);
}

test("sip session: a call is a `sip` session; DTMF events; caller's BYE → remote_hangup, bye told before release", async () => {
  const r = await rig();
  try {
    sippOk(await runSipp("uac_basic.xml", r.uas.localPort));
    const [id] = await sipSessionIds(r.db);
    assert.ok(id, "no sip session row");
    const row = await closedRow(r.db, id);
    assert.equal(row?.kind, "sip");
    assert.equal(row?.tenantId, r.tenantId);
    assert.equal(row?.reason, "remote_hangup");
    const ev = await timeline(r.db, id);
    assert.deepEqual(ev.map((e) => e.seq), ev.map((_, i) => i + 1), "seq gap");
    assert.ok(ev.some((e) => e.type === "state" && e.state === "active"));
    assert.deepEqual(ev.filter((e) => e.type === "dtmf").map((e) => e.type === "dtmf" && e.digit), ["5"]);
    assert.equal(ev.at(-1)?.type, "bye");
    assert.equal((ev.at(-1) as { reason?: string }).reason, "remote_hangup");
    // followers were told (bye persisted) while the call still held its RTP ports
    assert.deepEqual(r.atPipelineClose, [{ byePersisted: true, portsLeased: 1 }]);
    await waitFor(() => r.uas.ports.leased === 0);
    assert.equal(r.sessions.load, 0);
  } finally {
    await r.close();
  }
});

test("sip session: DELETE (manager.end) → Parley sends BYE, client_hangup; then say is refused", async () => {
  const r = await rig();
  try {
    const sipp = runSipp("uac_wait_bye.xml", r.uas.localPort);
    let id: string | undefined;
    const end = Date.now() + 10_000;
    while (!id && Date.now() < end) {
      const rows = await r.db.query<{ id: string }>(
        sql`select id from sessions where kind = 'sip' and state = 'active'`,
      );
      id = rows[0]?.id;
      if (!id) await new Promise((res) => setTimeout(res, 50));
    }
    assert.ok(id, "call never became an active session");
    assert.ok(await r.sessions.say(id, "hello"), "say on a live call");
    const summary = await r.sessions.end(id, "client_hangup");
    assert.equal(summary?.state, "closed");
    sippOk(await sipp); // SIPp received our BYE and answered it
    const row = await getSessionRow(r.db, id);
    assert.equal(row?.reason, "client_hangup");
    assert.equal((await timeline(r.db, id)).at(-1)?.type, "bye");
    await assert.rejects(r.sessions.say(id, "again"));
    assert.equal(r.uas.ports.leased, 0);
  } finally {
    await r.close();
  }
});

test("sip session: RTP never flows → media_timeout after SIP_RTP_TIMEOUT_MS, Parley BYEs", async () => {
  const r = await rig({ mediaTimeoutMs: 800 });
  try {
    const t0 = performance.now();
    sippOk(await runSipp("uac_media_timeout.xml", r.uas.localPort));
    const [id] = await sipSessionIds(r.db);
    const row = await closedRow(r.db, id);
    assert.equal(row?.reason, "media_timeout");
    assert.ok(performance.now() - t0 >= 800);
  } finally {
    await r.close();
  }
});

test("sip session: hold and unhold with the timeout shorter than the hold: no media_timeout", async () => {
  const r = await rig({ mediaTimeoutMs: 1000 });
  try {
    sippOk(await runSipp("uac_hold.xml", r.uas.localPort));
    const [id] = await sipSessionIds(r.db);
    const row = await closedRow(r.db, id);
    assert.equal(row?.reason, "remote_hangup");
    const muted = (await timeline(r.db, id)).filter((e) => e.type === "state").map((e) =>
      e.type === "state" && e.muted
    );
    assert.ok(muted.includes(true) && muted.at(-1) === false, `hold states: ${muted}`);
  } finally {
    await r.close();
  }
});

test("sip session: after release OPTIONS / re-INVITE / retransmitted INVITE get 481, no new session", async () => {
  const r = await rig();
  try {
    sippOk(await runSipp("uac_481_after_release.xml", r.uas.localPort));
    const ids = await sipSessionIds(r.db);
    assert.equal(ids.length, 1, "a released call was revived as a session");
    assert.equal((await closedRow(r.db, ids[0]))?.reason, "remote_hangup");
  } finally {
    await r.close();
  }
});

/** Two UDP sockets on an even/odd port pair: a scripted phone's RTP and RTCP (SIPp signals, this socket plays). */
async function mediaPair(): Promise<{ rtp: dgram.Socket; rtcp: dgram.Socket; port: number; close(): void }> {
  for (let attempt = 0;; attempt++) {
    const port = (await freePort()) & ~1;
    const rtp = dgram.createSocket("udp4"), rtcp = dgram.createSocket("udp4");
    try {
      await new Promise<void>((res, rej) => (rtp.once("error", rej), rtp.bind(port, "127.0.0.1", res)));
      await new Promise<void>((res, rej) => (rtcp.once("error", rej), rtcp.bind(port + 1, "127.0.0.1", res)));
      return { rtp, rtcp, port, close: () => (rtp.close(), rtcp.close()) };
    } catch (err) {
      try {
        rtp.close();
        rtcp.close();
      } catch { /* not bound */ }
      if (attempt === 5) throw err;
    }
  }
}

async function activeSipSession(r: Rig): Promise<SipSession> {
  const end = Date.now() + 10_000;
  for (;;) {
    const rows = await r.db.query<{ id: string }>(
      sql`select id from sessions where kind = 'sip' and state = 'active'`,
    );
    const live = rows[0] && r.sessions.live(rows[0].id);
    if (live instanceof SipSession && live.call.rtp) return live;
    if (Date.now() > end) throw new Error("call never became an active session");
    await new Promise((res) => setTimeout(res, 50));
  }
}

test("sip session: RTCP BYE without SIP BYE → remote_hangup, bye told before release, Parley BYEs, then 481", async () => {
  const r = await rig();
  const phone = await mediaPair();
  try {
    const sipp = runSipp("uac_rtcp_bye.xml", r.uas.localPort, ["-key", "rtp_port", String(phone.port)]);
    const session = await activeSipSession(r);
    const parleyRtp = session.call.rtp!.port;
    const ssrc = 0x1234abcd;
    // The phone's voice (silence is enough), so Parley latches its address and learns its SSRC.
    for (let i = 0; i < 10; i++) {
      phone.rtp.send(
        buildRtp({
          marker: i === 0,
          payloadType: 0,
          sequence: i,
          timestamp: i * 160,
          ssrc,
          payload: new Uint8Array(160).fill(0xff),
        }),
        parleyRtp,
        "127.0.0.1",
      );
      await new Promise((res) => setTimeout(res, 20));
    }
    await waitFor(() => session.call.rtp!.stats.packetsIn >= 10);
    // A BYE naming another source is not the phone's: the call goes on.
    phone.rtcp.send(buildRtcp({ ssrc: ssrc + 1, cname: "other", bye: true }), parleyRtp + 1, "127.0.0.1");
    await waitFor(() => session.call.rtp!.stats.ignoredByes === 1);
    assert.equal(session.state, "active");
    // The phone's own RTCP BYE (its SIP BYE never comes): the call ends, Parley BYEs the dialog.
    phone.rtcp.send(buildRtcp({ ssrc, cname: "phone", bye: true }), parleyRtp + 1, "127.0.0.1");
    sippOk(await sipp); // got Parley's BYE; then OPTIONS and re-INVITE in the released dialog got 481
    const row = await closedRow(r.db, session.id);
    assert.equal(row?.reason, "remote_hangup");
    const ev = await timeline(r.db, session.id);
    assert.equal(ev.at(-1)?.type, "bye");
    assert.equal((ev.at(-1) as { reason?: string }).reason, "remote_hangup");
    // followers were told (bye persisted) while the call still held its RTP ports
    assert.deepEqual(r.atPipelineClose, [{ byePersisted: true, portsLeased: 1 }]);
    await waitFor(() => r.uas.ports.leased === 0);
    assert.equal(r.sessions.load, 0);
    assert.deepEqual(await sipSessionIds(r.db), [session.id], "a released call was revived as a session");
  } finally {
    phone.close();
    await r.close();
  }
});

test("sip session: the tenant's session limit covers calls: over it 486 Busy Here, no row; room again once one ends", async () => {
  const r = await rig({ maxSessionsPerTenant: 2 });
  try {
    // A WebRTC session of the same tenant holds one of its two sessions.
    await claimSession(r.db, {
      id: crypto.randomUUID(),
      tenantId: r.tenantId,
      nodeId: "sip-test",
      mode: "echo",
      options: { mode: "echo" },
    });
    const first = runSipp("uac_wait_bye.xml", r.uas.localPort);
    const live = await activeSipSession(r);
    sippOk(await runSipp("uac_busy.xml", r.uas.localPort));
    assert.deepEqual(await sipSessionIds(r.db), [live.id], "a refused call left a session row");
    assert.equal(r.sessions.load, 1);
    await r.sessions.end(live.id, "client_hangup");
    sippOk(await first);
    sippOk(await runSipp("uac_basic.xml", r.uas.localPort));
    const ids = await sipSessionIds(r.db);
    assert.equal(ids.length, 2);
    assert.equal((await closedRow(r.db, ids[1]))?.reason, "remote_hangup");
  } finally {
    await r.close();
  }
});

test("sip session: a number with a room: the call publishes into it (listener hears the caller), leaves after its bye", async () => {
  const r = await rig({ room: true });
  const listener = new ListenerClient({ keepFrames: false });
  try {
    const offer = await listener.offer();
    const { listener: l, answer } = await r.roomHost.addListener(r.roomId!, r.tenantId, offer, {
      id: crypto.randomUUID(),
      source: "speaker",
    });
    await listener.accept(answer);
    await listener.waitFor(
      () => l.state === "connected" && listener.eventsOpen,
      10_000,
      "listener connected",
    );
    const quietBefore = listener.loudFrames;
    // SIPp plays a recorded voice (g711a.pcap) and a DTMF digit, then hangs up.
    sippOk(await runSipp("uac_basic.xml", r.uas.localPort));
    const [id] = await sipSessionIds(r.db);
    assert.equal((await closedRow(r.db, id))?.reason, "remote_hangup");
    const loud = listener.loudFrames - quietBefore;
    console.log("room listener: loud 10 ms frames while the caller spoke", loud);
    assert.ok(loud >= 50, `the room's listener heard ${loud} loud frames of the caller`);
    // The room's timeline: the call became its publisher, then left it (after the call's bye).
    const events = await roomEventsAfter(r.db, r.roomId!, 0);
    const publishers = events.filter((e) => e.type === "room").map((e) => e.type === "room" && e.publisher);
    assert.ok(publishers.includes(id), `room events: ${JSON.stringify(publishers)}`);
    assert.equal(publishers.at(-1), null, "the room still has the ended call as its publisher");
    await waitFor(() => r.roomHost.manager.get(r.roomId!)?.publisher === null);
  } finally {
    listener.close();
    await r.close();
  }
});

test("sip session: a number's room already published into → 486 Busy Here, no session row", async () => {
  const r = await rig({ room: true });
  try {
    const feed = await r.roomHost.attachPublisher(r.roomId!, r.tenantId, { sessionId: crypto.randomUUID() });
    sippOk(await runSipp("uac_busy.xml", r.uas.localPort));
    assert.deepEqual(await sipSessionIds(r.db), []);
    feed.detach();
  } finally {
    await r.close();
  }
});

test("sip session: unknown number → 404, no session row", async () => {
  const r = await rig({ number: "" });
  try {
    sippOk(await runSipp("uac_not_found.xml", r.uas.localPort));
    assert.deepEqual(await sipSessionIds(r.db), []);
  } finally {
    await r.close();
  }
});

test("sip session: call end reasons map onto session close reasons", async () => {
  await Promise.resolve(); // the case runner takes async cases
  assert.equal(closeReasonOf("remote_hangup").reason, "remote_hangup");
  assert.equal(closeReasonOf("media_timeout").reason, "media_timeout");
  assert.equal(closeReasonOf("shutdown").reason, "origin_shutdown");
  assert.equal(closeReasonOf("local_hangup").reason, "client_hangup");
  assert.equal(closeReasonOf("ack_timeout").reason, "error");
});

if (import.meta.main) await runCases("sip session cases", cases, Deno.args);
