/**
 * A room forward worker (forward_worker_host.ts ↔ forward_worker.ts) with a real werift client on loopback:
 * the client joins through the worker and hears exactly the packets main hands it (one message per run, each
 * payload once), its `select` reaches main, main's events reach it, statistics and the worker's metrics come
 * back; a bad offer is the worker's ApiError 400, kept across the boundary, with nothing left behind; a worker
 * that goes silent loses its listeners (`onWorkerLost`), pending starts reject, the next start gets a fresh
 * worker; close() is idempotent and ends the worker's peers.
 */
import assert from "node:assert/strict";
import { ApiError } from "../../lib/errors.ts";
import { registry } from "../../lib/metrics.ts";
import type { ListenerSource } from "../../protocol/room_messages.ts";
import { ForwardWorker, type ForwardWorkerClient, ForwardWorkerLost } from "./forward_worker_host.ts";
import {
  type ForwardListenerSpec,
  type ForwardListenerStats,
  type ForwardWorkerEvent,
  STATS_EVERY_MS,
} from "./forward_worker_types.ts";
import { ForwardWorkerRuntime, LATE_DROP_MS } from "./forward_worker_runtime.ts";
import { log } from "../../lib/log.ts";
import { NTP_EPOCH_OFFSET_S } from "../../lib/ntp_time.ts";
import type { ListenerCloseReason } from "./room_types.ts";
import { PacketListenerClient } from "./test_packet_listener.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// werift leaves its sockets' and timers' teardown to after pc.close() resolves.
const opts = { sanitizeOps: false, sanitizeResources: false };

class Recorder implements ForwardWorkerClient {
  connected = false;
  selects: ListenerSource[] = [];
  closed: ListenerCloseReason | null = null;
  lost: string | null = null;
  frames = 0;
  gaps: number[] = [];
  onConnected() {
    this.connected = true;
  }
  onSelect(s: ListenerSource) {
    this.selects.push(s);
  }
  onClosed(r: ListenerCloseReason) {
    this.closed = r;
  }
  onStats(s: ForwardListenerStats) {
    this.frames += s.frames;
    this.gaps.push(...(s.gapsMs ?? []));
  }
  onWorkerLost(reason: string) {
    this.lost = reason;
  }
}

const spec = (id: string): ForwardListenerSpec => ({
  id,
  roomId: "room-test",
  selected: "speaker",
  config: { connectTimeoutMs: 5000, iceDisconnectedGraceMs: 1000 },
  recordGaps: true,
});

async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const t0 = performance.now();
  while (!pred()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

Deno.test(
  "forward worker: a werift client hears main's packets through the worker; select, events, stats and close",
  opts,
  async () => {
    const worker = new ForwardWorker({ index: 7 });
    const client = new PacketListenerClient({ recordArrivals: true });
    const received: string[] = [];
    client.events.onMessage.subscribe((d) => received.push(String(d)));
    try {
      const rec = new Recorder();
      const { slot, sdp } = await worker.start(spec("l1"), await client.offer(), rec);
      assert.match(sdp, /a=setup:passive/);
      await client.accept(sdp);
      await until(() => rec.connected, 8000, "connected");
      assert.equal(worker.load, 1);
      // 50 packets of 20 ms, as a room tick hands them: the same payload object for two "listeners" of the
      // worker is sent once, so an unknown slot beside it costs nothing and reaches no one.
      const payload = new Uint8Array(60).map((_, i) => i);
      const posted: number[] = [];
      for (let i = 0; i < 50; i++) {
        posted.push(Date.now());
        worker.packet(slot, payload);
        worker.packet(9999, payload);
        await sleep(20);
      }
      await until(() => client.packets >= 50, 3000, "50 packets at the client");
      await sleep(100);
      assert.equal(client.packets, 50, "exactly the packets main handed it");
      // Main → client events; client → main select.
      worker.event(slot, { type: "error", code: "invalid_message", message: "hello from main" });
      await until(() => received.some((m) => m.includes("hello from main")), 3000, "event at the client");
      client.events.send(JSON.stringify({ type: "select", source: "voice" }));
      await until(() => rec.selects.length === 1, 3000, "select at main");
      assert.deepEqual(rec.selects, ["voice"]);
      // Statistics (deltas) and the worker's metrics arrive with its reports.
      await until(() => rec.frames >= 100, 2000, "stats");
      assert.equal(rec.frames, 100, "2 frames per packet sent");
      assert.ok(rec.gaps.length >= 45 && rec.gaps.every((g) => g > 5 && g < 200), `gaps ${rec.gaps.length}`);
      // werift's client offers AES-GCM first: the GCM session's packets also went out by sendto(2).
      assert.match(
        registry.render(),
        /parley_room_forwarded_packets_total\{worker="room-forward-7",path="fd"\} 50/,
      );
      // A sender report pairs a packet's RTP timestamp with the wall-clock time that packet was sent, in RFC
      // 3550's format (seconds since 1900, 2^-32 fractions; werift's own ntpTime() puts the decimal digits of
      // the fraction there, up to a second off): between when main posted that packet and when it arrived.
      await until(() => client.senderReports.some((r) => r.ntp !== 0n), 3000, "a sender report");
      const sr = client.senderReports.findLast((r) => r.ntp !== 0n)!;
      const k = client.arrivals.findIndex((a) => a.rtpTimestamp === sr.rtpTimestamp);
      assert.ok(k >= 0, `the report's RTP timestamp ${sr.rtpTimestamp} is a packet's`);
      const ntpMs = Number(sr.ntp >> 32n) * 1000 - NTP_EPOCH_OFFSET_S * 1000 +
        (Number(sr.ntp & 0xffffffffn) / 2 ** 32) * 1000;
      assert.ok(
        ntpMs >= posted[k] - 5 && ntpMs <= client.arrivals[k].at + 5,
        `sender report NTP ${ntpMs} for packet ${k}: posted ${posted[k]}, arrived ${client.arrivals[k].at}`,
      );
      assert.deepEqual(await worker.count(), { peers: 1, timers: 1 }, "the peer and its liveness timer");
      worker.closeListener(slot, "removed");
      worker.closeListener(slot, "removed");
      // The close is posted before the count request: the worker has closed the peer when it answers.
      assert.deepEqual(await worker.count(), { peers: 0, timers: 0 });
      const before = client.packets;
      worker.packet(slot, payload);
      await sleep(100);
      assert.equal(client.packets, before, "nothing reaches a closed listener");
      assert.equal(rec.closed, null, "a listener main closed is not reported back to it");
      assert.equal(worker.load, 0);
    } finally {
      client.close();
      await worker.close();
      await worker.close();
    }
    assert.equal(worker.running, false);
  },
);

Deno.test(
  "forward worker: a bad offer is the worker's 400 ApiError; nothing is left behind",
  opts,
  async () => {
    const worker = new ForwardWorker({ index: 8 });
    try {
      const good = new PacketListenerClient();
      const offer = await good.offer();
      good.close();
      const bad = [
        "",
        "v=0\r\nbogus",
        offer.replace(/a=fingerprint:[^\r]*\r\n/g, ""),
        offer.replace(/opus\/48000/g, "PCMU/8000"),
        offer.replace(/a=setup:actpass/g, "a=setup:passive"),
      ];
      for (const [i, sdp] of bad.entries()) {
        const rec = new Recorder();
        await assert.rejects(
          worker.start(spec(`bad${i}`), sdp, rec),
          (e) =>
            e instanceof ApiError && e.status === 400 && e.code === "bad_request" && e.message.length > 0,
          `case ${i}`,
        );
      }
      assert.deepEqual(await worker.count(), { peers: 0, timers: 0 });
      assert.equal(worker.load, 0);
    } finally {
      await worker.close();
    }
  },
);

Deno.test(
  "forward worker: a silent worker loses its listeners; the next start gets a fresh one",
  opts,
  async () => {
    const spawned: Worker[] = [];
    const worker = new ForwardWorker({
      index: 9,
      deadAfterMs: 400,
      spawn: () => {
        const w = new Worker(new URL("./forward_worker.ts", import.meta.url), { type: "module" });
        spawned.push(w);
        return w;
      },
    });
    const client = new PacketListenerClient();
    try {
      const rec = new Recorder();
      const { sdp } = await worker.start(spec("l1"), await client.offer(), rec);
      await client.accept(sdp);
      await until(() => rec.connected, 8000, "connected");
      // Terminated behind the handle's back: no error event, only silence.
      spawned[0].terminate();
      await assert.rejects(worker.count(), ForwardWorkerLost, "a request pending at its death");
      await until(() => rec.lost !== null, 3000, "worker lost");
      assert.match(rec.lost!, /unresponsive/);
      assert.equal(worker.failures, 1);
      assert.equal(worker.load, 0);
      assert.equal(worker.running, false);
      // A fresh worker for the next listener.
      const c2 = new PacketListenerClient();
      try {
        const rec2 = new Recorder();
        const r2 = await worker.start(spec("l2"), await c2.offer(), rec2);
        assert.equal(spawned.length, 2);
        await c2.accept(r2.sdp);
        await until(() => rec2.connected, 8000, "connected to the fresh worker");
      } finally {
        c2.close();
      }
    } finally {
      client.close();
      await worker.close();
    }
  },
);

Deno.test("forward worker runtime: a tick's packets that arrive too late are dropped and counted, not sent", () => {
  const posted: ForwardWorkerEvent[] = [];
  const runtime = new ForwardWorkerRuntime({ post: (m) => posted.push(m), log: log.child({}) });
  const dropped = () => registry.snapshot().find((f) => f.name === "parley_room_forward_late_dropped_total");
  const before = dropped()?.series[0]?.value ?? 0;
  const now = performance.timeOrigin + performance.now();
  runtime.handle(packets(now, now, 0));
  assert.equal(dropped()?.series[0]?.value ?? 0, before, "on time: not dropped");
  runtime.handle(packets(now, now - LATE_DROP_MS - 50, 0));
  assert.equal(dropped()!.series[0].value, before + 4, "one per listener slot of the late tick");
  // Late against its instant, not against when main posted it: main's own lateness counts too.
  runtime.handle(packets(now, now - LATE_DROP_MS - 80, 30));
  assert.equal(dropped()!.series[0].value, before + 8, "due + playout delay already 150 ms ago");
  runtime.handle({ type: "shutdown", req: 1 });
  assert.ok(posted.some((m) => m.type === "reply" && m.req === 1 && m.ok));
});

Deno.test("forward worker runtime: packets leave a playout delay after their tick was due, in order, on the worker's timer", async () => {
  const runtime = new ForwardWorkerRuntime({ post: () => {}, log: log.child({}) });
  const sent = () =>
    registry.snapshot().find((f) => f.name === "parley_room_forward_playout_lateness_seconds")?.series[0]
      ?.count ?? 0;
  const s0 = sent();
  const now = performance.timeOrigin + performance.now();
  // A tick due 15 ms ago (main's timer was late), posted now, with 40 ms of playout delay: sent in ~25 ms.
  runtime.handle(packets(now, now - 15, 40));
  runtime.handle(packets(now, now - 5, 40));
  assert.equal(sent(), s0, "held back, not sent on arrival");
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(sent(), s0, "still waiting 10 ms later");
  const until = performance.now() + 2000;
  while (sent() < s0 + 2 && performance.now() < until) await new Promise((r) => setTimeout(r, 2));
  const took = performance.timeOrigin + performance.now() - now;
  assert.equal(sent(), s0 + 2, "both ticks went out");
  assert.ok(took >= 34, `the second tick waited for its instant (${took.toFixed(1)} ms after arrival)`);
  // A tick still waiting at shutdown is dropped with its timer (the test's sanitizer sees no timer left).
  runtime.handle(packets(now, performance.timeOrigin + performance.now(), 1000));
  runtime.handle({ type: "shutdown", req: 1 });
  assert.equal(sent(), s0 + 2);
});

Deno.test("forward worker runtime: an idle worker reports once, then stays quiet until shutdown", async () => {
  const posted: ForwardWorkerEvent[] = [];
  const runtime = new ForwardWorkerRuntime({ post: (m) => posted.push(m), log: log.child({}) });
  await new Promise((r) => setTimeout(r, 4 * STATS_EVERY_MS + 50));
  assert.equal(posted.filter((m) => m.type === "stats").length, 1, "one report in four periods");
  runtime.handle({ type: "shutdown", req: 1 });
  assert.equal(posted.filter((m) => m.type === "stats").length, 2, "and the final one at shutdown");
});

function packets(sentAt: number, at: number, playoutMs: number) {
  return {
    type: "packets" as const,
    sentAt,
    at,
    playoutMs,
    payloads: [new Uint8Array(10), new Uint8Array(20)],
    slots: [Int32Array.of(1, 2, 3), Int32Array.of(4)],
  };
}
