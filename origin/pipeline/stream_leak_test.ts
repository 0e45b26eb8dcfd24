/**
 * Native decoder memory is freed at the session level: sessions with the streaming sphinx recognizer, 8 at a
 * time (more utterances than a worker keeps decoders for), in a child process (origin/pipeline/stream_churn.ts).
 * The burst's extra decoders are freed and their heap returned, so once the sessions are gone anonymous memory
 * is back near its level with the hub ready (its warm decoders built); threads and fds do not grow.
 * The 500-session run is `deno task bench sphinx_leak`.
 */
import assert from "node:assert/strict";
import type { StreamChurnSample, StreamChurnSummary } from "./stream_churn.ts";
import { SPHINX_KEEP_IDLE } from "../asr/factory.ts";
import { requireSphinx } from "../asr/sphinx/sphinx_testdata.ts";

requireSphinx();

/**
 * A decoder left alive fails the count check below (the workers' `parley_sphinx_decoders_open`). Anonymous
 * memory also holds what the allocator keeps after a burst of up to 8 decoders is freed: up to 70 MB over these
 * 16 sessions, on this code and on the code before it (origin/asr/sphinx/README.md, churn). This bound, about
 * 1.3 decoders' model copies (~90 MB each), catches native growth that is not a decoder.
 */
const MAX_GROWTH_KB = 120_000;

Deno.test("sphinx sessions: 16 sessions in bursts of 8 leave no decoder memory behind; threads and fds flat", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-worker-options",
      new URL("./stream_churn.ts", import.meta.url).pathname,
      "--sessions",
      "16",
      "--concurrency",
      "8",
      "--speech-ms",
      "600",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.ok(out.success, `churn failed: ${new TextDecoder().decode(out.stderr)}`);
  const lines = text.trim().split("\n").map((l) => JSON.parse(l));
  const s = Object.fromEntries(
    lines.filter((l) => "phase" in l).map((l: StreamChurnSample) => [l.phase, l]),
  ) as Record<StreamChurnSample["phase"], StreamChurnSample>;
  const summary = lines.at(-1) as StreamChurnSummary;
  console.log(
    `16 sphinx sessions: anonymous memory ${s.ready.anonKb} (ready) → ${s.warm.anonKb} (after ${s.warm.sessions}) → ` +
      `${s.end.anonKb} → ${s.settled.anonKb} kB (settled); threads ${s.ready.threads} → ${s.settled.threads}; ` +
      `fds ${s.ready.fds} → ${s.settled.fds}; decoders ${s.ready.decoders} → ${s.end.decoders} → ` +
      `${s.settled.decoders}; confirmed ${summary.confirmed}/${summary.sessions}, errors ${summary.errors}`,
  );
  assert.equal(summary.sessions, 16);
  assert.equal(summary.errors, 0);
  assert.ok(summary.confirmed >= 11, `only ${summary.confirmed} of 16 sessions got a confirmed result`);
  const growth = s.settled.anonKb - s.ready.anonKb;
  assert.ok(growth < MAX_GROWTH_KB, `anonymous memory grew ${growth} kB over 16 sessions`);
  assert.ok(s.settled.threads <= s.ready.threads, `threads ${s.ready.threads} → ${s.settled.threads}`);
  assert.ok(s.settled.fds <= s.ready.fds, `fds ${s.ready.fds} → ${s.settled.fds}`);
  // the workers' own metrics reach this process: decoders were counted, and the burst's extra ones were freed
  assert.ok(s.ready.decoders > 0, "decoders counted through the workers' metrics");
  assert.ok(
    s.settled.decoders <= 2 * SPHINX_KEEP_IDLE,
    `${s.settled.decoders} decoders left on 2 workers that keep ${SPHINX_KEEP_IDLE} idle each`,
  );
});
