/// <reference lib="dom" />
/**
 * The web client's DOM-free logic, run in Deno: a message for every close reason, the session-clock
 * estimate behind telop scheduling, TTS progress, and list extraction from API bodies.
 */
import assert from "node:assert/strict";
import { CLOSE_REASONS } from "../protocol/session_messages.ts";
import { byeMessage, describeError } from "../web/src/connection.ts";
import { ApiError } from "../web/src/api.ts";
import { SessionClock } from "../web/src/telop.ts";
import { progressOf } from "../web/src/jobs.ts";

Deno.test("web: every bye reason has its own clear message", () => {
  const seen = new Set<string>();
  for (const reason of CLOSE_REASONS) {
    const m = byeMessage({ type: "bye", seq: 1, reason });
    assert.ok(m.length > 10 && !m.includes("undefined"), `${reason}: ${m}`);
    seen.add(m);
  }
  assert.equal(seen.size, CLOSE_REASONS.length);
  assert.match(
    byeMessage({ type: "bye", seq: 1, reason: "error", message: "engine crashed" }),
    /engine crashed/,
  );
  assert.equal(
    byeMessage({ type: "bye", seq: 1, reason: "client_hangup", message: "bye" }),
    "Session ended.",
  );
});

Deno.test("web: API and media errors become readable sentences", () => {
  assert.match(describeError(new ApiError(503, "no_origin_available", "x")), /No speech server is available/);
  assert.match(describeError(new ApiError(401, "unauthorized", "x")), /Sign in again/);
  assert.match(describeError(new DOMException("denied", "NotAllowedError")), /Microphone access was denied/);
  assert.match(describeError(new TypeError("Failed to fetch")), /Network error/);
});

Deno.test("web: session clock takes the earliest bound and restarts per active peer", () => {
  const c = new SessionClock();
  c.playoutDelayMs = 50;
  c.observe(0, 1000); // state active received at local 1000
  c.observe(2000, 3100); // telop for session 2000 received late (100 ms network)
  assert.equal(c.local(2000), 1000 + 2000 + 50);
  c.observe(5000, 5990); // an earlier bound wins: session zero ≈ 990
  assert.equal(c.local(0), 990 + 50);
  c.reset();
  // No observation yet: assume session time `ms` is now.
  const before = performance.now();
  const t = c.local(1234);
  assert.ok(t >= before + 50 && t <= performance.now() + 50);
});

Deno.test("web: TTS progress from characters, chunks or status", () => {
  const base = { id: "j", status: "running" as const };
  const progress = { chunks_done: 1, chunks_total: 4, chars_done: 30, chars_total: 60, audio_seconds: 1 };
  assert.equal(progressOf({ ...base, progress }), 0.5);
  assert.equal(progressOf({ ...base, progress: { ...progress, chars_total: 0 } }), 0.25);
  assert.equal(progressOf({ ...base, status: "succeeded" }), 1);
  assert.equal(progressOf({ ...base, status: "queued" }), 0);
});
