/**
 * The streaming strategy's order of work on one stream, with a recognition stream double whose worker is slow:
 * a new segment's audio must not reach the worker before the previous segment's finish (the worker would take it
 * as the end of the old utterance and drop it), and every sample fed is sent exactly once.
 */
import assert from "node:assert/strict";
import { type RecognitionStream, StreamingStrategy } from "./stream_decode.ts";
import type { AsrResult } from "../asr/engine.ts";

interface Call {
  kind: "feed" | "finish";
  segment: number;
  samples: number;
}

/** A stream whose jobs complete only when the test lets them (a worker behind real time). */
function slowStream() {
  const calls: Call[] = [];
  const gates: Array<() => void> = [];
  const job = <T>(c: Call, value: T): Promise<T> => {
    calls.push(c);
    return new Promise<T>((resolve) => gates.push(() => resolve(value)));
  };
  const stream: RecognitionStream = {
    feed: (segment, pcm) => job({ kind: "feed", segment, samples: pcm.length }, null),
    finish: (segment, pcm) =>
      job<AsrResult>({ kind: "finish", segment, samples: pcm.length }, {
        alternatives: [{ text: `segment ${segment}`, score: 0 }],
        confidence: null,
        inferenceMs: 1,
      }),
    close: () => {},
  };
  /** Completes every job started so far, and those they start, until none is left. */
  const drain = async () => {
    for (let i = 0; i < 100; i++) {
      await new Promise((r) => setTimeout(r, 0));
      const g = gates.splice(0);
      if (!g.length && i > 3) return;
      g.forEach((f) => f());
    }
  };
  return { stream, calls, drain, release: () => gates.splice(0).forEach((f) => f()) };
}

Deno.test("streaming strategy: a new segment's audio waits for the previous segment's finish", async () => {
  const w = slowStream();
  const errors: string[] = [];
  const s = new StreamingStrategy({ open: () => Promise.resolve(w.stream) }, "order", (c) => errors.push(c));
  const chunk = () => new Float32Array(2560);
  const one = s.open(1);
  one.feed!(chunk()); // piece 1 of segment 1: outstanding in the slow worker
  await new Promise((r) => setTimeout(r, 0));
  one.feed!(chunk()); // waits behind it
  const r1 = one.confirm({ audio: new Float32Array(5120), speechEnd: 5120, forced: false });
  const two = s.open(2);
  two.feed!(chunk());
  two.feed!(chunk());
  await w.drain();
  assert.equal((await r1).alternatives[0].text, "segment 1");
  const r2 = two.confirm({ audio: new Float32Array(5120), speechEnd: 10240, forced: false });
  await w.drain();
  assert.equal((await r2).alternatives[0].text, "segment 2");
  const finish1 = w.calls.findIndex((c) => c.kind === "finish" && c.segment === 1);
  const first2 = w.calls.findIndex((c) => c.segment === 2);
  assert.ok(finish1 >= 0 && first2 > finish1, JSON.stringify(w.calls));
  for (const seg of [1, 2]) {
    const sent = w.calls.filter((c) => c.segment === seg).reduce((n, c) => n + c.samples, 0);
    assert.equal(sent, 5120, `segment ${seg}: every sample sent once`);
  }
  assert.deepEqual(errors, []);
  s.close();
  s.close();
});

Deno.test("streaming strategy: audio that waited behind a slow piece goes before the finish, not after", async () => {
  const w = slowStream();
  const s = new StreamingStrategy({ open: () => Promise.resolve(w.stream) }, "tail", () => {});
  const one = s.open(1);
  one.feed!(new Float32Array(2560)); // outstanding in the slow worker
  await new Promise((r) => setTimeout(r, 0));
  // the rest of the segment arrives at once (a worker far behind, or audio pushed faster than real time) and
  // the segment ends while the first piece is still out
  for (let i = 0; i < 10; i++) one.feed!(new Float32Array(2560));
  const r1 = one.confirm({ audio: new Float32Array(11 * 2560), speechEnd: 11 * 2560, forced: false });
  await w.drain();
  assert.equal((await r1).alternatives[0].text, "segment 1");
  const finish = w.calls.findIndex((c) => c.kind === "finish");
  assert.equal(
    finish,
    w.calls.length - 1,
    `nothing of the segment after its finish: ${JSON.stringify(w.calls)}`,
  );
  assert.equal(w.calls.reduce((n, c) => n + c.samples, 0), 11 * 2560, "every sample sent once");
  s.close();
});
