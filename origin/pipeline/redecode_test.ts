/**
 * The re-decoding strategy's requests: each segment's first partial is marked `first` (the engine hub runs it
 * ahead of other partials), later partials are not; confirmed decodes use the speculative result for the same
 * speech end and decode again when it failed.
 */
import assert from "node:assert/strict";
import { type RecognitionEngine, RedecodeStrategy } from "./redecode.ts";
import type { AsrResult } from "../asr/engine.ts";

type Opts = Parameters<RecognitionEngine["recognize"]>[1];

function engine(fail: (o: Opts) => boolean = () => false) {
  const calls: Opts[] = [];
  const e: RecognitionEngine = {
    recognize: (_pcm, opts) => {
      calls.push(opts);
      const r: AsrResult = {
        alternatives: [{ text: opts.kind, score: 0 }],
        confidence: null,
        inferenceMs: 0,
      };
      return fail(opts) ? Promise.reject(new Error("shed")) : Promise.resolve(r);
    },
    promote: () => {},
    cancel: () => {},
  };
  return { e, calls };
}

Deno.test("redecode: a partial the recognizer marks first (its segment shows no text yet) ranks as first; others do not", async () => {
  const { e, calls } = engine();
  const s = new RedecodeStrategy(e, "s1", () => undefined);
  const audio = () => new Float32Array(1600);
  const one = s.open(1);
  await one.partial(audio, { first: true });
  await one.partial(audio, { first: true });
  await one.partial(audio, { first: false });
  await one.partial(audio);
  assert.deepEqual(calls.map((c) => [c.kind, c.first]), [
    ["partial", true],
    ["partial", true],
    ["partial", false],
    ["partial", false],
  ]);
});

Deno.test("redecode: confirmed uses the speculative decode of the same speech end, and decodes again if it failed", async () => {
  const { e, calls } = engine((o) => o.kind === "speculative");
  const s = new RedecodeStrategy(e, "s1", () => undefined);
  const d = s.open(1);
  d.speculate!(16000, () => new Float32Array(16000));
  const r = await d.confirm({ audio: new Float32Array(16000), speechEnd: 16000, forced: false });
  assert.equal(r.alternatives[0].text, "confirmed");
  assert.deepEqual(calls.map((c) => c.kind), ["speculative", "confirmed"]);
});
