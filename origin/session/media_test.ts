/** Unit tests without wrtc peers: SDP validation, the paced outbound feeder, inbound conversion, echo. */
import assert from "node:assert/strict";
import { ApiError } from "../../lib/errors.ts";
import type { ServerEventBody } from "../../protocol/session_messages.ts";
import type { InboundFrame, PipelineHost } from "../pipeline/types.ts";
import { EchoPipeline } from "./echo.ts";
import { peakOf, to48k } from "./inbound_audio.ts";
import { FrameClock, PacedOutboundAudio } from "./outbound_audio.ts";
import { MAX_OFFER_BYTES, validateOffer } from "./sdp.ts";
import type { RTCAudioData, RTCAudioSource } from "./wrtc.ts";

const OFFER = [
  "v=0",
  "o=- 1 2 IN IP4 127.0.0.1",
  "s=-",
  "t=0 0",
  "a=group:BUNDLE 0 1",
  "m=audio 9 UDP/TLS/RTP/SAVPF 111",
  "c=IN IP4 0.0.0.0",
  "a=ice-ufrag:abcd",
  "a=ice-pwd:abcdefghijklmnopqrstuv",
  "a=fingerprint:sha-256 AA:BB",
  "a=mid:0",
  "a=rtpmap:111 opus/48000/2",
  "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
  "a=mid:1",
  "",
].join("\r\n");

function rejects(sdp: unknown, status: number, re: RegExp) {
  assert.throws(
    () => validateOffer(sdp),
    (e) => e instanceof ApiError && e.status === status && re.test(e.message),
  );
}

Deno.test("validateOffer: accepts a plausible offer, rejects size/structure problems", () => {
  assert.deepEqual(validateOffer(OFFER).audioSections, 1);
  rejects(undefined, 400, /not text/);
  rejects("", 400, /empty/);
  rejects("x".repeat(MAX_OFFER_BYTES + 1), 413, /limit/);
  rejects(OFFER.replace("v=0", "v=1"), 400, /v=0/);
  rejects(OFFER.replace("s=-", "junk line"), 400, /malformed line/);
  rejects(OFFER.replace("m=audio 9 UDP/TLS/RTP/SAVPF 111", "m=video 9 UDP/TLS/RTP/SAVPF 96"), 400, /audio/);
  rejects(OFFER.replace("m=audio 9 UDP", "m=audio 99999 UDP"), 400, /port/);
  rejects(OFFER.replace("m=audio 9 UDP/TLS/RTP/SAVPF 111", "m=audio"), 400, /m-line/);
  rejects(OFFER.replace("a=ice-ufrag:abcd\r\n", ""), 400, /ICE/);
  rejects(OFFER.replace("a=fingerprint:sha-256 AA:BB\r\n", ""), 400, /fingerprint/);
  rejects(OFFER.replace(/m=application[^\r]*\r\na=mid:1\r\n/, ""), 400, /data channel/);
  rejects(OFFER.replace("s=-", "s=\u0001"), 400, /control/);
  rejects(OFFER.replace("o=- 1 2 IN IP4 127.0.0.1\r\n", ""), 400, /o= line/);
});

class FakeSource implements RTCAudioSource {
  frames: Int16Array[] = [];
  at: number[] = [];
  createTrack(): never {
    throw new Error("not used");
  }
  onData(d: RTCAudioData): void {
    assert.equal(d.sampleRate, 48000);
    assert.equal(d.samples.length, 480);
    this.frames.push(d.samples.slice());
    this.at.push(performance.now());
  }
}

Deno.test("PacedOutboundAudio: one 480-sample frame per 10 ms, queued PCM then silence, playout events, clear", async () => {
  const clock = new FrameClock();
  const src = new FakeSource();
  const out = new PacedOutboundAudio({ source: src, now: () => 0, clock, recordGaps: true });
  const events: string[] = [];
  out.onPlayout((e) => events.push(`${e.utteranceId}:${e.phase}:${Math.round(e.playedMs)}`));
  const pcm = new Int16Array(48 * 25).fill(1000); // 25 ms
  out.enqueue("u1", pcm);
  out.endUtterance("u1");
  assert.equal(out.queuedMs(), 25);
  out.start();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, 305));
  const n = src.frames.length;
  const elapsed = performance.now() - t0;
  // drift-corrected: the count tracks elapsed time closely (±3 frames on a busy machine)
  assert.ok(Math.abs(n - elapsed / 10) <= 3, `${n} frames in ${elapsed} ms`);
  // frames 1-2 full of PCM, frame 3 half PCM half silence, then silence
  assert.equal(peakOf(src.frames[0]), 1000);
  assert.equal(src.frames[2][239], 1000);
  assert.equal(src.frames[2][240], 0);
  assert.equal(peakOf(src.frames[5]), 0);
  assert.deepEqual(events, ["u1:started:0", "u1:finished:25"]);
  assert.equal(out.queuedMs(), 0);
  // barge-in: clear reports how much of the cut utterance played
  out.enqueue("u2", new Int16Array(48 * 1000).fill(5));
  await new Promise((r) => setTimeout(r, 55));
  const cut = out.clear();
  assert.equal(cut.length, 1);
  assert.equal(cut[0].utteranceId, "u2");
  assert.ok(cut[0].playedMs >= 30 && cut[0].playedMs <= 100, String(cut[0].playedMs));
  assert.equal(out.queuedMs(), 0);
  out.close();
  assert.equal(clock.size, 0, "the clock stops when its last source leaves");
  const after = src.frames.length;
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(src.frames.length, after, "no frames after close");
  assert.ok(out.gapsMs!.length > 20);
});

Deno.test("FrameClock: a stalled event loop is caught up by at most 2 frames per tick, long stalls are skipped", async () => {
  const clock = new FrameClock();
  const src = new FakeSource();
  const out = new PacedOutboundAudio({ source: src, now: () => 0, clock });
  out.start();
  await new Promise((r) => setTimeout(r, 50));
  const busyUntil = performance.now() + 35;
  while (performance.now() < busyUntil) { /* stall the loop 35 ms */ }
  const before = src.frames.length;
  await new Promise((r) => setTimeout(r, 0));
  // right after the stall, one tick emits at most 2 frames (no 3-4 frame burst)
  assert.ok(src.frames.length - before <= 2, `burst of ${src.frames.length - before}`);
  const busy2 = performance.now() + 120;
  while (performance.now() < busy2) { /* 120 ms stall: beyond the backlog, skipped */ }
  const b2 = src.frames.length;
  await new Promise((r) => setTimeout(r, 30));
  assert.ok(src.frames.length - b2 <= 6, `after a long stall ${src.frames.length - b2} frames in ~30 ms`);
  out.close();
});

Deno.test("inbound conversion: 16 kHz / 160-sample first frames become 48 kHz / 480", () => {
  const f16 = new Int16Array(160).map((_, i) => i * 10);
  const f48 = to48k(f16, 16000);
  assert.equal(f48.length, 480);
  assert.equal(f48[0], 0);
  assert.equal(f48[3], 10);
  assert.equal(f48[4], 13); // interpolated
  assert.equal(to48k(new Int16Array(441), 44100).length, 480);
  const same = new Int16Array(480).fill(7);
  const copy = to48k(same, 48000);
  assert.notEqual(copy, same);
  assert.deepEqual(copy, same);
  assert.equal(peakOf(new Int16Array([3, -9, 4])), 9);
});

Deno.test("EchoPipeline: frames come back after ~delay; say → utterance started/finished", async () => {
  const clock = new FrameClock();
  const src = new FakeSource();
  const out = new PacedOutboundAudio({ source: src, now: () => 0, clock });
  const emitted: ServerEventBody[] = [];
  const host: PipelineHost = {
    sessionId: "s",
    tenantId: "t",
    outbound: out,
    now: () => 0,
    emit: (e) => {
      emitted.push(e);
      return Promise.resolve(emitted.length);
    },
  };
  const echo = new EchoPipeline(host, { delayMs: 60 });
  out.start();
  const t0 = performance.now();
  const frame = (v: number): InboundFrame => ({
    samples: new Int16Array(480).fill(v),
    sampleRate: 48000,
    timestampMs: 0,
    receivedAt: performance.now(),
  });
  let firstLoudAt = 0;
  const timer = setInterval(() => echo.push(frame(3000)), 10);
  while (performance.now() - t0 < 400 && !firstLoudAt) {
    await new Promise((r) => setTimeout(r, 5));
    if (src.frames.some((f) => f[0] === 3000)) firstLoudAt = performance.now();
  }
  clearInterval(timer);
  const lag = firstLoudAt - t0;
  assert.ok(lag >= 55 && lag < 250, `echo after ${lag} ms`);
  await echo.say("two words");
  await new Promise((r) => setTimeout(r, 450));
  const phases = emitted.filter((e) => e.type === "utterance").map((e) => (e as { phase: string }).phase);
  assert.deepEqual(phases, ["started", "finished"]);
  await echo.close();
  assert.equal(echo.state, "closed");
  await assert.rejects(() => echo.say("x"));
  out.close();
});
