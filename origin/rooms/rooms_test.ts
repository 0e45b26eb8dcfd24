/**
 * Unit tests of the room core without wrtc peers: the controller's frame-boundary switching and crossfade, the
 * backing track loop, the jitter buffer, the idle detector and the listener event queue's backpressure.
 * The wrtc cases (real listeners on loopback) are in rooms_cases.ts, run by rooms_wrtc_test.ts.
 */
import assert from "node:assert/strict";
import type { ListenerEvent } from "../../protocol/room_messages.ts";
import { FRAME_SAMPLES } from "../session/outbound_audio.ts";
import { BackingTrack } from "./backing_track.ts";
import { fadeGains, rms } from "./frame_math.ts";
import { IdleDetector } from "./idle_detector.ts";
import { type EventChannel, ListenerEventQueue } from "./listener_events.ts";
import { RoomController } from "./room_controller.ts";
import type { FrameSink, SwitchRecord, TickClock } from "./room_types.ts";
import { SourceQueue } from "./source_queue.ts";

class ManualClock implements TickClock {
  subs = new Set<() => void>();
  add(t: () => void) {
    this.subs.add(t);
  }
  remove(t: () => void) {
    this.subs.delete(t);
  }
  step(n = 1) {
    for (let i = 0; i < n; i++) for (const t of [...this.subs]) t();
  }
}

class RecordingSink implements FrameSink {
  frames: Int16Array[] = [];
  refs: Int16Array[] = [];
  pushFrame(s: Int16Array) {
    this.frames.push(s.slice());
    this.refs.push(s);
  }
}

/** A frame whose every sample is `v` (so a source is recognisable sample-exactly). */
const dc = (v: number) => new Int16Array(FRAME_SAMPLES).fill(v);
const SPK = 1000, VOI = 2000, TRK = 3000;
const isPure = (f: Int16Array, v: number) => f.every((x) => x === v);

function setup(opts: { crossfadeMs?: number; idle?: boolean } = {}) {
  const clock = new ManualClock();
  const switches: SwitchRecord[] = [];
  const track = new BackingTrack("t", new Int16Array(FRAME_SAMPLES * 10).fill(TRK));
  const c = new RoomController({
    roomId: "r",
    clock,
    track,
    defaultSource: "track",
    idle: opts.idle ?? false,
    crossfadeMs: opts.crossfadeMs,
    onSwitches: (s) => switches.push(...s),
  });
  c.start();
  // The live sources are pushed before each room tick (as if the publisher's frames had just arrived).
  const step = (n = 1) => {
    for (let i = 0; i < n; i++) {
      c.speaker.push(dc(SPK));
      c.voice.push(dc(VOI));
      clock.step();
    }
  };
  // Prefill the jitter buffers (2 frames) so the live sources play from the first tick.
  c.speaker.push(dc(SPK));
  c.voice.push(dc(VOI));
  return { clock, c, step, switches, track };
}

Deno.test("controller: a switch starts its crossfade on exactly the requested frame; the next frame is the new source", () => {
  const { c, step, switches } = setup();
  const a = new RecordingSink(), b = new RecordingSink();
  c.addListener("a", a, "speaker");
  c.addListener("b", b, "speaker");
  step(5);
  assert.ok(a.frames.every((f) => isPure(f, SPK)));
  for (const [to, v] of [["voice", VOI], ["room", TRK], ["speaker", SPK]] as const) {
    const k = c.frameIndex;
    c.select("a", to);
    step(3);
    const sw = switches.at(-1)!;
    assert.equal(sw.listenerId, "a");
    assert.equal(sw.requestedFrame, k);
    assert.equal(sw.appliedFrame, k, "applied on the requested frame boundary");
    const fade = a.frames[k];
    assert.ok(!isPure(fade, v) && fade.some((x) => x !== fade[0]), "frame k is a crossfade");
    // Equal-power: starts near the old value, ends near the new one.
    assert.ok(Math.abs(fade[0] - (sw.from === "speaker" ? SPK : sw.from === "voice" ? VOI : TRK)) < 20);
    assert.ok(Math.abs(fade[FRAME_SAMPLES - 1] - v) < 20);
    assert.ok(isPure(a.frames[k + 1], v), `frame k+1 is ${to} alone`);
    assert.ok(isPure(a.frames[k + 2], v));
    assert.ok(b.frames.slice(k).every((f) => isPure(f, SPK)), "the other listener is untouched");
  }
  assert.equal(c.switches, 3);
  c.close();
});

Deno.test("controller: 20 ms crossfade spans two frames; room default, idle and track changes switch on frame boundaries", () => {
  const { c, step, switches } = setup({ crossfadeMs: 20 });
  assert.equal(c.fadeFrames, 2);
  const sinks = Array.from({ length: 4 }, () => new RecordingSink());
  sinks.forEach((s, i) => c.addListener(`l${i}`, s, i < 2 ? "room" : "speaker"));
  step(3);
  let k = c.frameIndex;
  c.setDefaultSource("voice");
  step(4);
  for (const s of sinks.slice(0, 2)) {
    assert.ok(!isPure(s.frames[k], VOI) && !isPure(s.frames[k + 1], VOI), "two fade frames");
    assert.ok(s.frames[k][0] > s.frames[k + 1][0] - 2000, "fade progresses across frames");
    assert.ok(isPure(s.frames[k + 2], VOI));
  }
  assert.ok(sinks.slice(2).every((s) => s.frames.slice(k).every((f) => isPure(f, SPK))));
  assert.deepEqual(switches.filter((s) => s.reason === "default").map((s) => s.appliedFrame), [k, k]);
  // Idle: every listener to the track (the room's idle source is silence by default → silence).
  k = c.frameIndex;
  c.setIdle(true);
  step(3);
  for (const s of sinks) assert.ok(isPure(s.frames[k + 2], 0), "idle source (silence) after the fade");
  assert.equal(switches.filter((s) => s.reason === "idle").length, 4);
  assert.ok(switches.filter((s) => s.reason === "idle").every((s) => s.appliedFrame === k));
  // Sharing: listeners hearing the same thing get the same buffer (one mix per distinct fade, not per listener).
  assert.equal(sinks[0].refs[k], sinks[1].refs[k], "one crossfade buffer per distinct fade, shared");
  assert.equal(sinks[2].refs[k], sinks[3].refs[k]);
  assert.notEqual(sinks[0].refs[k], sinks[2].refs[k]);
  c.setIdleSource("track");
  k = c.frameIndex;
  step(3);
  for (const s of sinks) assert.ok(isPure(s.frames[k + 2], TRK));
  k = c.frameIndex;
  c.setIdle(false);
  step(3);
  assert.ok(
    isPure(sinks[0].frames[k + 2], VOI) && isPure(sinks[3].frames[k + 2], SPK),
    "back to the live sources",
  );
  assert.equal(switches.filter((s) => s.reason === "active").length, 4);
  c.close();
});

Deno.test("controller: remove is immediate, close unsubscribes from the clock and is idempotent", () => {
  const { c, step, clock } = setup();
  const a = new RecordingSink();
  c.addListener("a", a, "speaker");
  step(2);
  assert.equal(c.removeListener("a"), true);
  step(2);
  assert.equal(a.frames.length, 2);
  assert.equal(c.has("a"), false);
  assert.equal(clock.subs.size, 1);
  c.close();
  c.close();
  assert.equal(clock.subs.size, 0);
  assert.throws(() => c.addListener("b", a, "room"), /closed/);
});

Deno.test("controller: the backing track pauses while nobody hears it", () => {
  const { c, step, track } = setup({ idle: false });
  const a = new RecordingSink();
  c.addListener("a", a, "speaker");
  step(5);
  assert.equal(track.position, 0);
  c.select("a", "room");
  step(4);
  assert.equal(track.position, 4 * FRAME_SAMPLES);
  c.close();
});

Deno.test("BackingTrack: loops sample-exactly across the seam; rejects non-48 kHz or too-short PCM", () => {
  const n = 1234;
  const pcm = new Int16Array(n).map((_, i) => i);
  const t = new BackingTrack("ramp", pcm);
  const out: number[] = [];
  for (let i = 0; i < 10; i++) out.push(...t.next());
  assert.deepEqual(out, Array.from({ length: 4800 }, (_, i) => i % n));
  assert.equal(t.loops, 3);
  assert.throws(() => new BackingTrack("x", pcm, 44_100), /44100 Hz, expected 48000/);
  assert.throws(() => new BackingTrack("x", new Int16Array(100)), /at least 480/);
  t.close();
  t.close();
  assert.ok(t.next().every((x) => x === 0));
});

Deno.test("SourceQueue: rechunks to 480, prefills after an underrun, drops the oldest past its hard cap", () => {
  const q = new SourceQueue({ prefillFrames: 2, maxFrames: 4 });
  q.push(new Int16Array(700).fill(1));
  assert.equal(q.pop(), null, "waits for 2 frames");
  q.push(new Int16Array(300).fill(2));
  assert.ok(q.pop()!.every((x) => x === 1));
  const f = q.pop()!;
  assert.equal(f[219], 1);
  assert.equal(f[220], 2);
  assert.equal(q.pop(), null);
  assert.equal(q.underruns, 1);
  for (let i = 0; i < 6; i++) q.push(new Int16Array(480).fill(10 + i));
  assert.equal(q.length, 4 * 480);
  assert.equal(q.pop()![0], 12, "the two oldest frames were dropped");
  assert.ok(q.droppedSamples >= 2 * 480);
});

/** Frame n: a loud frame carries 1000 + n (mean amplitude ≥ 1000), a quiet one n % 100 (below quietLevel). */
function frameOf(n: number, loud: boolean): Int16Array {
  return new Int16Array(480).fill(loud ? 1000 + n : n % 100);
}

Deno.test("SourceQueue: a burst after a stall is kept whole, then the standing delay drains in quiet frames only", () => {
  const q = new SourceQueue({ prefillFrames: 2, windowFrames: 10, forceAfterFrames: 1000 });
  // 30 frames at once (an event-loop stall): loud speech with a quiet frame every 5th.
  for (let n = 0; n < 30; n++) q.push(frameOf(n, n % 5 !== 4));
  const played: number[] = [];
  // The producer then keeps pace: one frame in, one frame out, for 60 ticks.
  for (let n = 30; n < 90; n++) {
    q.push(frameOf(n, n % 5 !== 4));
    const f = q.pop()!;
    played.push(f[0]);
  }
  assert.equal(played[0], 1000, "nothing of the burst was thrown away at once");
  const loud = played.filter((v) => v >= 1000).map((v) => v - 1000);
  const shed = Math.round(q.droppedSamples / 480);
  assert.ok(shed > 0, "the standing delay was drained");
  assert.ok(q.length / 480 <= 30 - shed + 1);
  // Every loud frame pushed before the last played one was played: only quiet frames were shed.
  const lastLoud = loud[loud.length - 1];
  const expectedLoud = Array.from({ length: lastLoud + 1 }, (_, n) => n).filter((n) => n % 5 !== 4);
  assert.deepEqual(loud, expectedLoud);
});

Deno.test("SourceQueue: a talker who never pauses is drained anyway after forceAfterFrames; a steady queue is left alone", () => {
  const q = new SourceQueue({ prefillFrames: 2, windowFrames: 10, forceAfterFrames: 20 });
  for (let n = 0; n < 30; n++) q.push(frameOf(n, true));
  for (let n = 30; n < 200; n++) {
    q.push(frameOf(n, true));
    q.pop();
  }
  assert.ok(q.length / 480 <= 2 + 2 + 1, `drained to the target, ${q.length / 480} frames left`);
  const steady = new SourceQueue({ prefillFrames: 2, windowFrames: 10, forceAfterFrames: 20 });
  steady.push(frameOf(0, true));
  steady.push(frameOf(1, true));
  for (let n = 2; n < 300; n++) {
    steady.push(frameOf(n, true));
    steady.pop();
  }
  assert.equal(steady.droppedSamples, 0);
  assert.equal(steady.underruns, 0);
});

Deno.test("IdleDetector: idle after idleAfterMs without speech (within one period), active on the speech frame", () => {
  let now = 0;
  const changes: Array<[boolean, number]> = [];
  const d = new IdleDetector({
    idleAfterMs: 500,
    periodMs: 1_000_000,
    now: () => now,
    onChange: (i, t) => changes.push([i, t]),
  });
  const loud = new Int16Array(480).fill(3000), quiet = new Int16Array(480).fill(50);
  assert.equal(d.idle, true);
  assert.equal(d.noteFrame(loud), false, "no publisher: speech does not count");
  d.publisherJoined();
  d.check();
  assert.equal(d.idle, true, "a publisher that has not spoken keeps the room idle");
  now = 100;
  assert.equal(d.noteFrame(loud), true);
  assert.deepEqual(changes, [[false, 100]]);
  for (now = 110; now < 1000; now += 20) {
    d.noteFrame(quiet);
    d.check();
  }
  // The first check at or after 100 + 500 ms (checks run every 20 ms here: 590, 610).
  assert.deepEqual(changes[1], [true, 610]);
  now = 1200;
  d.noteFrame(loud);
  assert.deepEqual(changes[2], [false, 1200]);
  now = 1250;
  d.publisherLeft();
  assert.deepEqual(changes[3], [true, 1250]);
  now = 1300;
  assert.equal(d.noteFrame(loud), false);
  assert.ok(Math.abs(d.idleMs - (100 + 590 + 50)) < 1e-9);
  d.close();
  d.close();
});

Deno.test("IdleDetector: on its real timer, idle fires idleAfterMs ± 100 ms after the last speech", async () => {
  let idleAt = 0;
  const d = new IdleDetector({ idleAfterMs: 300, onChange: (idle, t) => idle && (idleAt = t) });
  d.publisherJoined();
  d.noteFrame(new Int16Array(480).fill(3000));
  const spokeAt = performance.now();
  while (!idleAt && performance.now() - spokeAt < 2000) await new Promise((r) => setTimeout(r, 10));
  d.close();
  const after = idleAt - spokeAt;
  assert.ok(after >= 300 && after <= 400, `idle ${after.toFixed(1)} ms after the last speech`);
});

class FakeChannel implements EventChannel {
  readyState: EventChannel["readyState"] = "open";
  bufferedAmount = 0;
  sent: ListenerEvent[] = [];
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
}

const partial = (seq: number, seg: number): ListenerEvent => ({
  type: "caption",
  seq,
  session_id: "s",
  segment_id: seg,
  status: "partial",
  text: `p${seq}`,
  stable_text: "",
  alternatives: [],
  start_ms: 0,
  end_ms: 0,
});
const confirmed = (
  seq: number,
  seg: number,
): ListenerEvent => ({ ...partial(seq, seg), status: "confirmed" } as ListenerEvent);

Deno.test("ListenerEventQueue: slow listener gets partials coalesced, every confirmed caption in seq order", async () => {
  const ch = new FakeChannel();
  let overflow = 0;
  const q = new ListenerEventQueue({
    highWaterBytes: 100,
    maxPartials: 2,
    maxPending: 50,
    flushMs: 5,
    onOverflow: () => overflow++,
  });
  q.push(partial(1, 1));
  assert.equal(ch.sent.length, 0, "nothing before the channel opens");
  q.attach(ch);
  assert.deepEqual(ch.sent.map((e) => (e as { seq: number }).seq), [1]);
  ch.bufferedAmount = 1000; // slow
  let seq = 1;
  for (let seg = 1; seg <= 5; seg++) {
    for (let i = 0; i < 6; i++) q.push(partial(++seq, seg));
    q.push(confirmed(++seq, seg));
  }
  q.push(partial(++seq, 6));
  q.push(partial(++seq, 6));
  q.push(partial(++seq, 7));
  q.push(partial(++seq, 8));
  assert.ok(q.pending <= 5 + 2, `pending ${q.pending}`);
  assert.ok(q.flushScheduled);
  ch.bufferedAmount = 0;
  await new Promise((r) => setTimeout(r, 30));
  const seqs = ch.sent.map((e) => (e as { seq: number }).seq);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "seq order");
  const conf = ch.sent.filter((e) => e.type === "caption" && e.status === "confirmed").map((e) =>
    (e as { segment_id: number }).segment_id
  );
  assert.deepEqual(conf, [1, 2, 3, 4, 5], "no confirmed caption lost");
  const tailPartials = ch.sent.filter((e) =>
    e.type === "caption" && e.status === "partial" && (e as { segment_id: number }).segment_id >= 6
  );
  assert.deepEqual(
    tailPartials.map((e) => (e as { segment_id: number }).segment_id),
    [7, 8],
    "at most 2 partials wait; older coalesced/dropped",
  );
  assert.ok(q.dropped > 0);
  assert.equal(overflow, 0);
  assert.equal(q.flushScheduled, false);
  q.close();
});

Deno.test("ListenerEventQueue: a listener too slow for the confirmed captions overflows (owner disconnects), close stops the timer", () => {
  const ch = new FakeChannel();
  ch.bufferedAmount = 1e9;
  let overflow = 0;
  const q = new ListenerEventQueue({ maxPending: 10, onOverflow: () => overflow++ });
  q.attach(ch);
  for (let i = 1; i <= 20; i++) q.push(confirmed(i, i));
  assert.equal(overflow, 1);
  q.close();
  assert.equal(q.flushScheduled, false);
  assert.equal(q.pending, 0);
});

Deno.test("frame_math: equal-power gains keep power constant; rms", () => {
  const g = fadeGains(480);
  for (let i = 0; i < 480; i += 37) assert.ok(Math.abs(g.out[i] ** 2 + g.in[i] ** 2 - 1) < 1e-6);
  assert.equal(rms(new Int16Array([3, -3, 3, -3])), 3);
});
