/**
 * Rooms with real wrtc peers on loopback: a publisher feed (frames of a spoken WAV or marker tones pushed
 * through the RoomPublisherFeed, as the Session will) and ListenerClients (recvonly wrtc peers with an `events`
 * channel) in this process. Each case leaves no listener, room, timer or clock subscription behind.
 *
 * Not a `*_test.ts` file: a process that had connected wrtc peers segfaults when it ends on its own (see
 * origin/session/wrtc.ts), so rooms_wrtc_test.ts runs this as a child script that closes everything and calls
 * Deno.exit; it exits 1 if a case failed.
 *
 *   deno run -A origin/rooms/rooms_cases.ts [name-substring...]
 */
import assert from "node:assert/strict";
import { ApiError } from "../../lib/errors.ts";
import { registry } from "../../lib/metrics.ts";
import { configureLogging } from "../../lib/log.ts";
import type { CaptionEvent, RoomEvent } from "../../protocol/room_messages.ts";
import type { ServerEvent } from "../../protocol/session_messages.ts";
import { readWav } from "../pipeline/wav.ts";
import { FRAME_SAMPLES, frameClock } from "../session/outbound_audio.ts";
import { procStats } from "../session/proc_stats.ts";
import { ensureKeepalive } from "../session/wrtc.ts";
import { threadPolicies } from "../session/wrtc_threads.ts";
import { caseList, runCases } from "../session/wrtc_cases.ts";
import { BackingTrack } from "./backing_track.ts";
import { Room } from "./room.ts";
import { RemoteForwardListener } from "./remote_forward_listener.ts";
import { RoomManager } from "./room_manager.ts";
import type { ListenerSource, RoomOptions, RoomPublisherFeed } from "./room_types.ts";
import { ListenerClient, Tone } from "./test_listener.ts";

configureLogging({ level: "warn" });
ensureKeepalive();

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const { cases, test } = caseList();
/**
 * The cases that run once per way of sending listeners audio: an encoder per listener, or shared programs
 * (their peers in a forward worker, or `@0` in this isolate).
 */
const PROFILES = ["full", "shared", "shared@0"] as const;
type Variant = typeof PROFILES[number];
const suffix = (v: Variant) =>
  v === "full" ? "" : v === "shared" ? " [shared]" : " [shared, in this isolate]";
/** The room options and the manager's forward workers of a variant. */
const variant = (v: Variant) => ({
  audioProfile: v === "full" ? "full" as const : "shared" as const,
  forwardWorkers: v === "shared@0" ? 0 : 1,
});

const SPEECH = readWav(new URL("../../tests/fixtures/speech/one_phrase_48k.wav", import.meta.url));
if (SPEECH.sampleRate !== 48_000) throw new Error("fixture is not 48 kHz");
/** Marker tones: speaker, voice, track. */
const MARKERS = [500, 1100, 1700];

function pct(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

function toneTrack(freq: number, seconds = 2): BackingTrack {
  // A whole number of cycles per track so the loop seam is continuous too.
  const cycles = Math.round(freq * seconds);
  const n = Math.round(cycles * 48_000 / freq);
  const pcm = new Int16Array(n).map((_, i) => Math.round(8000 * Math.sin(2 * Math.PI * freq * i / 48_000)));
  return new BackingTrack(`tone${freq}`, pcm);
}

/** Pushes publisher frames from the 10 ms clock, as a live Session's media paths would. */
class PublisherDriver {
  speaker: (() => Int16Array) | null;
  voice: (() => Int16Array) | null;
  lastLoudAt = 0;
  #t = 0;
  readonly #tick = () => this.#push();
  constructor(
    readonly feed: RoomPublisherFeed,
    opts: { speaker?: () => Int16Array; voice?: () => Int16Array },
  ) {
    this.speaker = opts.speaker ?? null;
    this.voice = opts.voice ?? null;
    frameClock.add(this.#tick);
  }
  #push(): void {
    const now = performance.now();
    if (this.speaker) {
      const s = this.speaker();
      if (s.some((x) => Math.abs(x) > 1000)) this.lastLoudAt = now;
      this.feed.onInboundFrame({ samples: s, sampleRate: 48_000, timestampMs: this.#t, receivedAt: now });
    }
    if (this.voice) this.feed.onOutboundFrame(this.voice());
    this.#t += 10;
  }
  stop(): void {
    frameClock.remove(this.#tick);
  }
}

function speechLoop(): () => Int16Array {
  let pos = 0;
  const frame = new Int16Array(FRAME_SAMPLES);
  return () => {
    for (let i = 0; i < FRAME_SAMPLES; i++) {
      frame[i] = SPEECH.samples[pos];
      pos = (pos + 1) % SPEECH.samples.length;
    }
    return frame;
  };
}

async function join(
  room: Room,
  opts: { source?: ListenerSource; markers?: number[]; keepFrames?: boolean } = {},
): Promise<{ c: ListenerClient; id: string }> {
  const c = new ListenerClient({ markers: opts.markers ?? MARKERS, keepFrames: opts.keepFrames });
  const offer = await c.offer();
  const { listener, answer } = await room.addListener(offer, { source: opts.source });
  await c.accept(answer);
  await c.waitFor(
    () => listener.state === "connected" && c.eventsOpen,
    5000,
    () =>
      `listener connected (origin ${listener.state}/${listener.peerState}/${listener.reason}, client ${c.pc.connectionState}, events ${c.eventsOpen})`,
  );
  return { c, id: listener.id };
}

async function joinMany(room: Room, n: number, opts: Parameters<typeof join>[1] = {}) {
  const out: Array<{ c: ListenerClient; id: string }> = [];
  for (let i = 0; i < n; i += 5) {
    out.push(...await Promise.all(Array.from({ length: Math.min(5, n - i) }, () => join(room, opts))));
  }
  return out;
}

function makeRoom(
  { forwardWorkers, ...options }: Partial<RoomOptions> & { forwardWorkers?: number },
  track?: BackingTrack,
) {
  const manager = new RoomManager({
    listenerConfig: { connectTimeoutMs: 5000, iceDisconnectedGraceMs: 1000 },
    forward: { workers: forwardWorkers },
  });
  const room = manager.create(crypto.randomUUID(), options, { track });
  return { manager, room };
}

function transcript(segment: number, status: "partial" | "confirmed", text: string): ServerEvent {
  return {
    type: "transcript",
    seq: 0,
    segment_id: segment,
    status,
    alternatives: [{ text, score: 0.9 }],
    stable_text: status === "confirmed" ? text : "",
    unstable_text: status === "confirmed" ? "" : text,
    start_ms: segment * 1000,
    end_ms: segment * 1000 + 900,
    latency_ms: 100,
  };
}

for (const v of PROFILES) {
  test(`20 listeners hear the publisher's voice (energy) and get every confirmed caption in seq order${suffix(v)}`, async () => {
    const { manager, room } = makeRoom({ idleAfterMs: 5000, ...variant(v) });
    const clockSubs = frameClock.size;
    const feed = room.attachPublisher({ sessionId: "pub-1" });
    const driver = new PublisherDriver(feed, { speaker: speechLoop() });
    const t0 = performance.now();
    const ls = await joinMany(room, 20, { keepFrames: false });
    console.log(`  20 listeners connected in ${Math.round(performance.now() - t0)} ms`);
    assert.equal(room.listenerCount, 20);
    await Promise.all(ls.map(({ c }) => c.waitFor(() => c.loudFrames > 100, 8000, "speech energy")));
    for (let seg = 1; seg <= 5; seg++) {
      for (let p = 1; p <= 3; p++) feed.onEvent(transcript(seg, "partial", `words ${seg}.${p}`));
      feed.onEvent(transcript(seg, "confirmed", `sentence ${seg}`));
      await sleep(20);
    }
    await Promise.all(ls.map(({ c }) =>
      c.waitFor(
        () => c.received.filter((e) => e.type === "caption" && e.status === "confirmed").length === 5,
        3000,
        "5 confirmed captions",
      )
    ));
    for (const { c } of ls) {
      const seqs = c.received.filter((e): e is RoomEvent => "seq" in e && e.type !== "room").map((e) =>
        e.seq
      );
      assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "seq order");
      assert.equal(new Set(seqs).size, seqs.length, "no duplicate seq");
      const conf = c.received.filter((e): e is CaptionEvent =>
        e.type === "caption" && e.status === "confirmed"
      );
      assert.deepEqual(conf.map((e) => e.text), [1, 2, 3, 4, 5].map((i) => `sentence ${i}`));
      assert.ok(c.received.some((e) => e.type === "room"), "room state first");
    }
    const gaps = ls.flatMap(({ c }) => c.gapsMs);
    const loud = ls.map(({ c }) => c.loudFrames);
    console.log(
      `  receive gaps over 20 listeners: p50 ${pct(gaps, 0.5).toFixed(1)} p99 ${
        pct(gaps, 0.99).toFixed(1)
      } max ${pct(gaps, 1).toFixed(1)} ms; loud frames per listener ${Math.min(...loud)}..${
        Math.max(...loud)
      }`,
    );
    if (v !== "full") {
      // libwebrtc clients negotiate AES-CM: packets leave through sendto on the pair's socket descriptor.
      await sleep(300);
      assert.match(registry.render(), /parley_room_forwarded_packets_total\{[^}]*path="fd"[^}]*\} [1-9]/);
    }
    const sendMax = Math.max(...room.listeners().map((l) => l.maxGapMs));
    console.log(`  origin send gap max over listeners ${sendMax.toFixed(1)} ms`);
    driver.stop();
    feed.detach();
    manager.close();
    for (const { c } of ls) c.close();
    assert.equal(room.closed, true);
    assert.equal(frameClock.size, clockSubs - 1, "room unsubscribed from the clock");
  });
}

for (const v of PROFILES) {
  test(`switching speaker ↔ voice ↔ room: on the request's frame at the origin, arrival at the receiver${suffix(v)}`, async () => {
    const { manager, room } = makeRoom(
      { defaultSource: "track", idleAfterMs: 5000, ...variant(v) },
      toneTrack(MARKERS[2]),
    );
    const feed = room.attachPublisher({ sessionId: "pub-2" });
    const spk = new Tone(MARKERS[0]), voi = new Tone(MARKERS[1]);
    const driver = new PublisherDriver(feed, { speaker: () => spk.next(), voice: () => voi.next() });
    const [a, b] = await joinMany(room, 2, { source: "speaker" });
    await a.c.waitFor(() => room.controller.idle === false, 3000, "room active");
    await a.c.waitFor(() => a.c.firstTone(0, 0) !== undefined, 3000, "speaker tone");
    const arrivals: number[] = [], applyDelays: number[] = [];
    const order: Array<[ListenerSource, number]> = [["voice", 1], ["room", 2], ["speaker", 0], ["room", 2], [
      "voice",
      1,
    ], ["speaker", 0]];
    for (const [source, tone] of order) {
      await sleep(150);
      const frameBefore = room.controller.frameIndex;
      const t = performance.now();
      room.select(a.id, source);
      await a.c.waitFor(() => a.c.firstTone(tone, t) !== undefined, 2000, `${source} tone`);
      const sw = room.recentSwitches.filter((s) => s.listenerId === a.id).at(-1)!;
      if (variant(v).audioProfile === "shared") {
        // Packet listeners switch on the next 20 ms packet boundary: at most one frame after the request.
        assert.ok(
          sw.appliedFrame - sw.requestedFrame <= 1 && sw.appliedFrame >= sw.requestedFrame,
          "next packet",
        );
        assert.equal(sw.appliedFrame % 2, 0, "on a packet boundary");
      } else assert.equal(sw.appliedFrame, sw.requestedFrame, "switch on the request's frame");
      assert.ok(sw.requestedFrame >= frameBefore && sw.requestedFrame <= frameBefore + 2);
      applyDelays.push(sw.atMs - t);
      arrivals.push(a.c.firstTone(tone, t)!.at - t);
    }
    console.log(
      `  request → tick that switched: max ${
        Math.max(...applyDelays).toFixed(1)
      } ms; request → new tone at the ` +
        `receiver: ${
          arrivals.map((x) => x.toFixed(0)).join(", ")
        } ms (includes Opus + jitter buffer latency)`,
    );
    // The bound is on the room's frame clock (asserted above: applied on the request's frame, requested at most
    // two frames after the call); the wall-clock delay to that tick is the event loop's and is reported only.
    assert.ok(Math.max(...arrivals) <= 400, "arrival within 400 ms end to end");
    // The other listener never changed.
    assert.ok(b.c.frames.slice(-50).every((f) => f.tone === 0));
    // The client's own control message switches it too.
    const t = performance.now();
    b.c.select("voice");
    await b.c.waitFor(() => b.c.firstTone(1, t) !== undefined, 2000, "voice after select on the channel");
    await b.c.waitFor(() => b.c.received.some((e) => e.type === "source" && e.playing === "voice"), 2000);
    b.c.events.send("{not json");
    await b.c.waitFor(
      () => b.c.received.some((e) => e.type === "error"),
      2000,
      "error event for a bad message",
    );
    driver.stop();
    manager.close();
    a.c.close();
    b.c.close();
  });
}

for (const v of PROFILES) {
  test(`idle → backing track after idle_after_ms ± 100 ms, back on speech; publisher gone → idle${suffix(v)}`, async () => {
    const idleAfterMs = 800;
    const { manager, room } = makeRoom(
      { idleSource: "track", idleAfterMs, ...variant(v) },
      toneTrack(MARKERS[2]),
    );
    const feed = room.attachPublisher({ sessionId: "pub-3" });
    const spk = new Tone(MARKERS[0]);
    const quiet = new Int16Array(FRAME_SAMPLES);
    let talking = true;
    const driver = new PublisherDriver(feed, { speaker: () => talking ? spk.next() : quiet });
    const [a] = await joinMany(room, 1, { source: "speaker" });
    await a.c.waitFor(() => a.c.firstTone(0, 0) !== undefined, 3000, "speaker tone");
    await sleep(300);
    talking = false;
    await sleep(50);
    const lastLoud = driver.lastLoudAt;
    await a.c.waitFor(() => room.controller.idle, 3000, "idle");
    // (a packet listener switches on the next packet boundary, a frame after the room went idle)
    await a.c.waitFor(() => room.recentSwitches.some((s) => s.reason === "idle"), 1000, "idle switch");
    const idleSw = room.recentSwitches.filter((s) => s.reason === "idle").at(-1)!;
    const after = idleSw.atMs - lastLoud;
    console.log(
      `  idle switch ${after.toFixed(0)} ms after the last speech frame (idle_after_ms ${idleAfterMs})`,
    );
    assert.ok(Math.abs(after - idleAfterMs) <= 100, `idle after ${after.toFixed(0)} ms`);
    // On the room's own timeline the switch is exact: idle_after_ms after the last speech frame it played
    // (plus at most one frame: the check runs on the tick after the threshold is reached).
    const quietFrames = idleSw.appliedFrame - room.idleDetector.lastSpeechAt / 10;
    const slack = variant(v).audioProfile === "shared" ? 2 : 1; // packet listeners: the next packet boundary
    assert.ok(
      quietFrames >= idleAfterMs / 10 && quietFrames <= idleAfterMs / 10 + slack,
      `${quietFrames} frames`,
    );
    assert.equal(idleSw.to, "track");
    await a.c.waitFor(
      () => a.c.firstTone(2, idleSw.atMs) !== undefined,
      2000,
      "backing track at the listener",
    );
    const resumeAt = performance.now();
    talking = true;
    await a.c.waitFor(() => a.c.firstTone(0, resumeAt) !== undefined, 2000, "speaker again");
    const activeSw = room.recentSwitches.filter((s) => s.reason === "active").at(-1)!;
    console.log(`  back to the speaker ${(activeSw.atMs - resumeAt).toFixed(0)} ms after speech returned`);
    assert.ok(activeSw.atMs - resumeAt <= 60);
    const goneAt = performance.now();
    feed.detach();
    await a.c.waitFor(() => a.c.firstTone(2, goneAt) !== undefined, 2000, "track after the publisher left");
    assert.ok(
      room.recentSwitches.filter((s) => s.reason === "idle").at(-1)!.atMs - goneAt <=
        (variant(v).audioProfile === "shared" ? 30 : 20),
    );
    assert.equal(room.publisher, null);
    assert.ok(a.c.received.some((e) => e.type === "room" && e.publisher === null && e.idle));
    // A new publisher that does not speak keeps the room idle; its speech ends it.
    const feed2 = room.attachPublisher({ sessionId: "pub-3b" });
    driver.stop();
    const d2 = new PublisherDriver(feed2, { speaker: () => quiet });
    await sleep(200);
    assert.equal(room.controller.idle, true);
    d2.speaker = () => spk.next();
    await a.c.waitFor(() => !room.controller.idle, 1000, "active on the new publisher's speech");
    d2.stop();
    manager.close();
    a.c.close();
  });
}

test("idle runs on the room's frame timeline: a stalled event loop does not idle a speaking publisher", async () => {
  // A manual clock stands for the room's ticks; a busy wait longer than idle_after_ms stands for a stall of
  // the origin's event loop while the publisher's media is queued (delivered after the stall).
  const subs = new Set<() => void>();
  const clock = { add: (t: () => void) => subs.add(t), remove: (t: () => void) => subs.delete(t) };
  const tick = (n: number) => {
    for (let i = 0; i < n; i++) for (const t of [...subs]) t();
  };
  const room = new Room({ id: "stall", options: { idleAfterMs: 200 }, clock });
  try {
    const feed = room.attachPublisher({ sessionId: "pub-stall" });
    const loud = new Int16Array(FRAME_SAMPLES).fill(3000);
    for (let i = 0; i < 5; i++) {
      feed.onInboundFrame({ samples: loud, sampleRate: 48_000, timestampMs: i * 10, receivedAt: 0 });
      tick(1);
    }
    tick(1);
    assert.equal(room.controller.idle, false, "speech made the room active");
    const until = performance.now() + 400;
    while (performance.now() < until) { /* the stall: no tick, no timer, no media */ }
    await sleep(30); // timers that were due during the stall run now
    assert.equal(room.idleDetector.idle, false, "no idle while no frame was played");
    feed.onInboundFrame({ samples: loud, sampleRate: 48_000, timestampMs: 50, receivedAt: 0 });
    tick(3);
    assert.equal(room.controller.idle, false);
    // Quiet frames on the room's timeline do idle it: 200 ms = 20 frames after the last speech frame played.
    const speechFrame = room.idleDetector.lastSpeechAt / 10;
    let idleAt = -1;
    for (let i = 0; i < 40 && idleAt < 0; i++) {
      tick(1);
      if (room.controller.idle) idleAt = room.controller.frameIndex - 1;
    }
    assert.ok(
      idleAt - speechFrame >= 20 && idleAt - speechFrame <= 21,
      `idle ${idleAt - speechFrame} frames`,
    );
  } finally {
    room.close();
  }
  assert.equal(subs.size, 0, "the room left the clock");
});

for (const v of PROFILES) {
  test(`a removed listener is gone with its peer, sink and timers; room close cascades${suffix(v)}`, async () => {
    const { manager, room } = makeRoom({ ...variant(v) });
    const feed = room.attachPublisher({ sessionId: "pub-4" });
    const spk = new Tone(MARKERS[0]);
    const driver = new PublisherDriver(feed, { speaker: () => spk.next() });
    const [a, b] = await joinMany(room, 2, { source: "speaker" });
    const la = room.listener(a.id)!;
    assert.equal(room.removeListener(a.id), true);
    assert.equal(room.removeListener(a.id), false, "second remove: unknown");
    assert.equal(room.listener(a.id), undefined);
    assert.equal(room.controller.has(a.id), false);
    assert.equal(la.state, "closed");
    assert.equal(la.reason, "removed");
    assert.equal(la.trackState, "ended", "source track stopped");
    assert.equal(la.peerState, "closed", "peer closed");
    assert.equal(la.timersPending, false, "no timer left");
    const pool = manager.forwardPool;
    if (v === "shared") {
      assert.ok(la instanceof RemoteForwardListener, "the peer runs in a forward worker");
      // The worker holds b's peer and its liveness timer only.
      assert.deepEqual(await pool!.count(), { peers: 1, timers: 1 }, "the worker released a's peer");
    }
    const framesAtRemove = la.frames;
    await a.c.waitFor(
      () => a.c.eventsClosed || a.c.pc.connectionState !== "connected",
      5000,
      "client sees the end",
    );
    await sleep(100);
    assert.equal(la.frames, framesAtRemove, "no frame after removal");
    la.close("error");
    assert.equal(la.reason, "removed", "close is idempotent");
    const framesB = b.c.receivedFrames;
    await sleep(200);
    assert.ok(b.c.receivedFrames > framesB + 10, "the other listener keeps receiving");
    const lb = room.listener(b.id)!;
    const subs = frameClock.size;
    room.close();
    room.close();
    assert.equal(lb.state, "closed");
    assert.equal(lb.reason, "room_closed");
    assert.equal(lb.peerState, "closed");
    assert.equal(room.listenerCount, 0);
    assert.equal(frameClock.size, subs - 1);
    assert.equal(room.controller.closed, true);
    assert.equal(manager.get(room.id), undefined, "the manager forgot the closed room");
    assert.equal(feed.detached, true, "the publisher's feed is revoked");
    if (pool) assert.deepEqual(await pool.count(), { peers: 0, timers: 0 }, "no peer or timer in the worker");
    driver.stop();
    await manager.close();
    if (pool) assert.ok(pool.workers.every((w) => !w.running), "the manager's close ends its workers");
    a.c.close();
    b.c.close();
  });
}

test("listener cap under a concurrent flood, bad offers, publisher conflict and replace", async () => {
  const { manager, room } = makeRoom({ maxListeners: 3 });
  const clients = Array.from({ length: 6 }, () => new ListenerClient());
  const offers = await Promise.all(clients.map((c) => c.offer()));
  const results = await Promise.allSettled(offers.map((o) => room.addListener(o)));
  const ok = results.filter((r) => r.status === "fulfilled");
  const refused = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  assert.equal(ok.length, 3);
  assert.equal(refused.length, 3);
  for (const r of refused) {
    assert.ok(
      r.reason instanceof ApiError && r.reason.status === 429 &&
        /full \(3 listeners\)/.test(r.reason.message),
    );
  }
  assert.equal(room.listenerCount, 3);
  // Bad SDP: 400, nothing kept (a slot frees first so the cap is not what refuses it).
  room.removeListener(room.listeners()[0].id);
  for (const bad of ["", "v=0\r\nbogus", offers[0].replace(/a=fingerprint:[^\r]*\r\n/, "")]) {
    await assert.rejects(room.addListener(bad), (e) => e instanceof ApiError && e.status === 400);
  }
  assert.equal(room.listenerCount, 2);
  // Publisher: a second one is a 409 under `reject`.
  room.attachPublisher({ sessionId: "p1" });
  assert.throws(
    () => room.attachPublisher({ sessionId: "p2" }),
    (e) => e instanceof ApiError && e.status === 409,
  );
  manager.close();
  for (const c of clients) c.close();
  // `replace`: the old feed is revoked and told.
  const m2 = new RoomManager();
  const r2 = m2.create("replace-room", { publisherPolicy: "replace" });
  let replaced = 0;
  const f1 = r2.attachPublisher({ sessionId: "p1", onReplaced: () => replaced++ });
  r2.attachPublisher({ sessionId: "p2" });
  assert.equal(replaced, 1);
  assert.equal(f1.detached, true);
  assert.equal(r2.publisher, "p2");
  f1.detach(); // a revoked feed's detach does not unseat the new publisher
  assert.equal(r2.publisher, "p2");
  assert.throws(() => m2.create("replace-room"), (e) => e instanceof ApiError && e.status === 409);
  m2.close();
  assert.throws(
    () => r2.attachPublisher({ sessionId: "p3" }),
    (e) => e instanceof ApiError && e.status === 404,
  );
});

test("shared profile: 61 generated bad offers are 4xx or a working listener, never a crash or a leftover", async () => {
  const { manager, room } = makeRoom({ audioProfile: "shared", maxListeners: 100 });
  const client = new ListenerClient();
  const valid = await client.offer();
  const lines = valid.split("\r\n");
  let seed = 42;
  const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
  const fixed = [
    "",
    "v=0\r\nbogus",
    valid.replace(/a=fingerprint:[^\r]*\r\n/g, ""),
    valid.replace(/a=ice-ufrag:[^\r]*\r\n/g, ""),
    valid.replace(/opus\/48000\/2/g, "PCMU/8000"),
    valid.replace(/a=setup:actpass/g, "a=setup:passive"),
    lines.filter((l) => !l.startsWith("m=audio")).join("\r\n"),
    valid.slice(0, valid.length / 2),
    "x".repeat(200_000),
  ];
  const mutated = Array.from({ length: 52 }, () => {
    const ls = [...lines];
    const i = rnd(ls.length);
    switch (rnd(4)) {
      case 0:
        ls.splice(i, 1);
        break;
      case 1:
        ls.splice(i, 0, ls[rnd(ls.length)]);
        break;
      case 2:
        ls[i] = ls[i].slice(0, rnd(ls[i].length + 1));
        break;
      default:
        ls[i] = ls[i].replace(/[0-9]/, "\u0000");
    }
    return ls.join("\r\n");
  });
  let refused = 0, accepted = 0;
  for (const [i, sdp] of [...fixed, ...mutated].entries()) {
    try {
      const { listener } = await room.addListener(sdp);
      assert.ok(i >= fixed.length, `fixed bad offer ${i} was accepted`);
      accepted++;
      listener.close("removed");
    } catch (e) {
      if (e instanceof assert.AssertionError) throw e;
      assert.ok(e instanceof ApiError && e.status >= 400 && e.status < 500, `4xx, got ${e}`);
      refused++;
    }
  }
  console.log(`  ${refused} refused (4xx), ${accepted} accepted (a harmless mutation), 0 other outcomes`);
  assert.equal(room.listenerCount, 0, "nothing kept");
  assert.equal(room.controller.encoders, 0);
  assert.deepEqual(await manager.forwardPool!.count(), { peers: 0, timers: 0 }, "no peer left in the worker");
  client.close();
  await manager.close();
});

test("shared profile: a live client's receiver reports keep it; a client that went away is closed", async () => {
  const manager = new RoomManager({
    listenerConfig: { connectTimeoutMs: 5000, iceDisconnectedGraceMs: 500 },
  });
  const room = manager.create(crypto.randomUUID(), { audioProfile: "shared" });
  const spk = new Tone(MARKERS[0]);
  const driver = new PublisherDriver(room.attachPublisher({ sessionId: "pub-live" }), {
    speaker: () => spk.next(),
  });
  const [a, b] = await joinMany(room, 2, { source: "speaker", keepFrames: false });
  const la = room.listener(a.id)!, lb = room.listener(b.id)!;
  // Liveness bound: ICE grace (0.5 s) + 5 s without RTCP from the client.
  await sleep(7000);
  assert.equal(la.state, "connected", "still live past the liveness bound: its client reports");
  const t0 = performance.now();
  b.c.pc.close(); // the client goes away without DELETE
  await a.c.waitFor(() => lb.state === "closed", 8000, "origin closes the gone client's listener");
  console.log(
    `  gone client's listener closed after ${(performance.now() - t0).toFixed(0)} ms (${lb.reason})`,
  );
  assert.ok(["client_hangup", "ice_disconnected_timeout"].includes(lb.reason!), String(lb.reason));
  assert.equal(lb.timersPending, false);
  assert.equal(la.state, "connected");
  driver.stop();
  manager.close();
  a.c.close();
  b.c.close();
});

test("shared profile: a lost forward worker closes its listeners (error), the room goes on, the next listener gets a fresh worker", async () => {
  const spawned: Worker[] = [];
  const manager = new RoomManager({
    listenerConfig: { connectTimeoutMs: 5000, iceDisconnectedGraceMs: 1000 },
    forward: {
      workers: 1,
      deadAfterMs: 600,
      spawn: (i) => {
        const w = new Worker(new URL("./forward_worker.ts", import.meta.url), {
          type: "module",
          name: `room-forward-${i}`,
        });
        spawned.push(w);
        return w;
      },
    },
  });
  const room = manager.create(crypto.randomUUID(), { audioProfile: "shared" });
  const spk = new Tone(MARKERS[0]);
  const driver = new PublisherDriver(room.attachPublisher({ sessionId: "pub-lost" }), {
    speaker: () => spk.next(),
  });
  const [a, b] = await joinMany(room, 2, { source: "speaker", keepFrames: false });
  const la = room.listener(a.id)!, lb = room.listener(b.id)!;
  // Terminated behind the pool's back: no error event, only silence.
  spawned[0].terminate();
  await a.c.waitFor(() => la.state === "closed" && lb.state === "closed", 5000, "listeners closed");
  assert.equal(la.reason, "error");
  assert.equal(lb.reason, "error");
  assert.equal(room.listenerCount, 0);
  assert.equal(room.controller.size, 0, "the controller forgot them");
  assert.equal(manager.forwardPool!.workers[0].failures, 1);
  const [c] = await joinMany(room, 1, { source: "speaker", keepFrames: false });
  assert.equal(spawned.length, 2, "a fresh worker");
  const before = c.c.loudFrames;
  await c.c.waitFor(() => c.c.loudFrames > before + 20, 5000, "the new listener hears the publisher");
  driver.stop();
  await manager.close();
  for (const x of [a, b, c]) x.c.close();
});

test("audio profile: fanout listeners get 60 ms CELT packets, full ones 20 ms; no real-time send threads", async () => {
  const { manager, room } = makeRoom({ maxListeners: 4 });
  const fan = manager.create(crypto.randomUUID(), { audioProfile: "fanout" });
  const drivers = [room, fan].map((r) => {
    const tone = new Tone(MARKERS[0]);
    return new PublisherDriver(r.attachPublisher({ sessionId: `pub-${r.id}` }), {
      speaker: () => tone.next(),
    });
  });
  const full = await join(room, { keepFrames: false, source: "speaker" });
  const fanout = await join(fan, { keepFrames: false, source: "speaker" });
  await Promise.all([full, fanout].map(({ c }) => c.waitFor(() => c.loudFrames > 20, 5000, "the tone")));
  const a = await Promise.all([full.c.inboundAudio(), fanout.c.inboundAudio()]);
  const t0 = performance.now();
  await sleep(1500);
  const b = await Promise.all([full.c.inboundAudio(), fanout.c.inboundAudio()]);
  const secs = (performance.now() - t0) / 1000;
  const [pf, pn] = [0, 1].map((i) => ({
    pps: (b[i].packets - a[i].packets) / secs,
    bytesPerPacket: (b[i].bytes - a[i].bytes) / Math.max(1, b[i].packets - a[i].packets),
  }));
  console.log(
    `  full ${pf.pps.toFixed(1)} packets/s, ${pf.bytesPerPacket.toFixed(0)} B each; fanout ${
      pn.pps.toFixed(1)
    } packets/s, ${pn.bytesPerPacket.toFixed(0)} B each`,
  );
  // 20 ms packets are 50/s, 60 ms ones 16.7/s (a loaded machine delays some, it does not add any).
  assert.ok(pn.pps > 5 && pn.pps < 25, `fanout packets/s ${pn.pps}`);
  assert.ok(pf.pps > 30, `full packets/s ${pf.pps}`);
  // 96 kbit/s in 60 ms packets: several times the bytes of a 32 kbit/s 20 ms packet.
  assert.ok(
    pn.bytesPerPacket > 3 * pf.bytesPerPacket,
    `bytes per packet ${pn.bytesPerPacket} vs ${pf.bytesPerPacket}`,
  );
  const rt = threadPolicies().filter((t) =>
    ["rtp_send_contro", "TaskQueuePacedS", "AudioEncoder"].includes(t.comm) && t.policy !== 0
  );
  assert.deepEqual(rt, [], "listeners' send threads are SCHED_OTHER");
  for (const d of drivers) d.stop();
  full.c.close();
  fanout.c.close();
  manager.close();
});

test("shared profile: one encoder per program heard, whatever the listener count; freed on close", async () => {
  const { manager, room } = makeRoom({ audioProfile: "shared", defaultSource: "voice" });
  const spk = new Tone(MARKERS[0]), voi = new Tone(MARKERS[1]);
  const driver = new PublisherDriver(room.attachPublisher({ sessionId: "pub-shared" }), {
    speaker: () => spk.next(),
    voice: () => voi.next(),
  });
  const speakers = await joinMany(room, 4, { source: "speaker" });
  const voices = await joinMany(room, 4, { source: "room" });
  // 80 loud frames: the last 50 examined below all come after the room went active.
  await Promise.all(
    [...speakers, ...voices].map(({ c }) => c.waitFor(() => c.loudFrames > 80, 5000, "audio")),
  );
  // Each hears its own program only (a starved client conceals a few frames: those carry no tone).
  const hears = (c: ListenerClient, tone: number) => {
    const last = c.frames.slice(-50);
    return last.filter((f) => f.tone === tone).length >= 35 &&
      !last.some((f) => f.tone >= 0 && f.tone !== tone);
  };
  for (const { c } of speakers) assert.ok(hears(c, 0), "speaker tone");
  for (const { c } of voices) assert.ok(hears(c, 1), "voice tone");
  assert.equal(room.controller.encoders, 2, "one encoder for `speaker`, one for `voice` (room default)");
  const a = await speakers[0].c.inboundAudio();
  const t0 = performance.now();
  await sleep(1000);
  const b = await speakers[0].c.inboundAudio();
  const pps = (b.packets - a.packets) / ((performance.now() - t0) / 1000);
  console.log(`  8 listeners, 2 programs encoded; ${pps.toFixed(1)} packets/s at a listener`);
  assert.ok(pps > 30 && pps < 60, `20 ms packets: ${pps}/s`);
  const open = () => Number(/parley_room_program_encoders_open (\d+)/.exec(registry.render())?.[1] ?? NaN);
  assert.equal(open(), 2);
  driver.stop();
  manager.close();
  assert.equal(room.controller.encoders, 0, "encoders freed with the room");
  assert.equal(open(), 0, "gauge back to 0");
  for (const { c } of [...speakers, ...voices]) c.close();
});

// A short run in the suite; bench/rooms_churn.ts does 300 through the edge (ROOMS_CHURN=300 runs 300 here).
const CHURN = Number(Deno.env.get("ROOMS_CHURN") ?? 40);

for (const v of PROFILES) {
  test(`churn: ${CHURN} listener joins/leaves keep threads and fds flat${suffix(v)}`, async () => {
    const { manager, room } = makeRoom({ maxListeners: 50, ...variant(v) });
    const feed = room.attachPublisher({ sessionId: "pub-churn" });
    const spk = new Tone(MARKERS[0]);
    const driver = new PublisherDriver(feed, { speaker: () => spk.next() });
    const cycle = async () => {
      const { c, id } = await join(room, { keepFrames: false });
      await c.waitFor(() => c.receivedFrames > 3, 3000, "audio");
      room.removeListener(id);
      c.close();
    };
    for (let i = 0; i < 10; i++) await cycle(); // warm-up: process-lived JIT, buffers, sockets
    await sleep(300);
    const before = procStats();
    const t0 = performance.now();
    const total = CHURN, concurrency = 10;
    let started = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (started < total) {
        started++;
        await cycle();
      }
    }));
    await sleep(500);
    const after = procStats();
    console.log(
      `  ${total} joins/leaves in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s: threads ${before.threads} → ` +
        `${after.threads}, fds ${before.fds} → ${after.fds}, RSS ${(before.rssKiB / 1024).toFixed(0)} → ${
          (after.rssKiB / 1024).toFixed(0)
        } MiB`,
    );
    assert.equal(room.listenerCount, 0);
    assert.ok(after.threads <= before.threads, `threads ${before.threads} → ${after.threads}`);
    assert.ok(after.fds <= before.fds, `fds ${before.fds} → ${after.fds}`);
    driver.stop();
    manager.close();
  });
}

if (import.meta.main) await runCases("rooms cases", cases, Deno.args);
