import assert from "node:assert/strict";
import { SphinxEngine } from "./sphinx_engine.ts";
import { DEFAULT_SPHINX_CONFIG } from "./sphinx_detect.ts";
import { SphinxClosedError } from "./sphinx_errors.ts";
import { SphinxUtteranceStream } from "./sphinx_utterance_stream.ts";
import { wordErrorRate } from "../error_rate.ts";
import { librivoxUtterances, readWav16k, requireSphinx } from "./sphinx_testdata.ts";
import { SMALL_LM_CONFIG } from "./sphinx_churn.ts";

requireSphinx();

const f32 = (pcm: Int16Array) => Float32Array.from(pcm, (v) => v / 32768);

function feedAll(s: SphinxUtteranceStream, pcm: Int16Array): void {
  for (let i = 0; i < pcm.length; i += 2560) s.process(f32(pcm.subarray(i, i + 2560)));
}

Deno.test("sphinx utterance stream: a decoder only while an utterance runs; silent streams hold none", async () => {
  const engine = await SphinxEngine.load({
    config: DEFAULT_SPHINX_CONFIG,
    maxDecoders: 2,
    keepIdle: 2,
    warmIdle: 1,
    prewarm: 1,
  });
  try {
    const u = librivoxUtterances().find((x) => x.id.endsWith("0930"))!;
    const pcm = readWav16k(u.path);
    const streams = await Promise.all(
      [1, 2, 3, 4, 5].map(() => engine.openAsrStream()),
    ) as SphinxUtteranceStream[];
    assert.equal(engine.pool.stats().lent, 0, "open streams hold no decoder");
    const s = streams[0];
    feedAll(s, pcm.subarray(0, 16000));
    assert.ok(s.holdsDecoder);
    assert.equal(typeof s.partial(), "string");
    feedAll(s, pcm.subarray(16000));
    const r = s.finish();
    // a fresh decoder's cepstral mean starts from the model's prior: the engine test's first-utterance check
    assert.ok(r.alternatives[0]?.text.startsWith("he might even have been"), r.alternatives[0]?.text);
    assert.ok(r.words && r.words.length > 0);
    assert.equal(s.holdsDecoder, false, "finish gives the decoder back");
    // the next utterance, on another stream, reuses it: no model load
    feedAll(streams[1], pcm);
    const again = streams[1].finish().alternatives[0]?.text ?? "";
    assert.ok(wordErrorRate(u.ref, again) <= 0.5, again);
    assert.equal(engine.pool.stats().created, 1);
    assert.equal(engine.housekeeping(), false, "one idle: nothing to build");
    feedAll(streams[3], pcm.subarray(0, 8000));
    assert.equal(engine.housekeeping(), true, "none idle after a lend: housekeeping builds a warm one");
    assert.equal(engine.housekeeping(), false);
    assert.deepEqual(engine.pool.stats(), {
      idle: 1,
      lent: 1,
      waiting: 0,
      created: 2,
      freed: 0,
      building: 0,
    });
    assert.deepEqual(streams[2].finish().alternatives, [], "finish without audio: empty, no decoder");
    for (const x of streams) x.close();
    assert.equal(engine.pool.stats().lent, 0);
  } finally {
    await engine.dispose();
  }
});

Deno.test("sphinx utterance stream: with every decoder lent, audio waits and nothing is lost; overflow is freed", async () => {
  const engine = await SphinxEngine.load({
    config: SMALL_LM_CONFIG,
    maxDecoders: 2,
    keepIdle: 2,
    prewarm: 2,
  });
  try {
    const speech = readWav16k(librivoxUtterances()[1].path).subarray(0, 16000); // 1 s
    const [a, b, c] = await Promise.all(
      [1, 2, 3].map(() => engine.openAsrStream()),
    ) as SphinxUtteranceStream[];
    feedAll(a, speech);
    feedAll(b, speech);
    feedAll(c, speech.subarray(0, 8000));
    assert.equal(c.holdsDecoder, false, "both decoders are lent");
    const waiting = (s: SphinxUtteranceStream): number => s.waitingSamples;
    assert.equal(waiting(c), 8000);
    assert.equal(c.partial(), "", "no hypothesis while waiting");
    a.finish(); // a decoder comes free
    feedAll(c, speech.subarray(8000));
    assert.ok(c.holdsDecoder && waiting(c) === 0, "the waiting audio went to the freed decoder");
    const rc = c.finish() as { words: unknown[] } & ReturnType<SphinxUtteranceStream["finish"]>;
    assert.ok(rc.inferenceMs >= 0);

    // all lent again at a confirmed result: an overflow decoder, freed afterwards
    feedAll(a, speech);
    const d = (await engine.openAsrStream()) as SphinxUtteranceStream;
    feedAll(d, speech);
    assert.equal(d.holdsDecoder, false);
    const created = engine.pool.stats().created;
    const rd = d.finish();
    assert.ok(rd.inferenceMs >= 0);
    assert.equal(engine.pool.stats().created, created + 1, "an overflow decoder");
    assert.equal(engine.pool.alive, 2, "and it was freed: back at the bound");

    // cancel and close mid-utterance give the decoder back; close is idempotent; use after close throws
    b.cancel();
    assert.equal(b.holdsDecoder, false);
    a.close();
    a.close();
    assert.equal(engine.pool.stats().lent, 0);
    assert.throws(() => a.process(new Float32Array(160)), SphinxClosedError);
  } finally {
    await engine.dispose();
  }
});

Deno.test("sphinx utterance stream: the waiting audio is all decoded (utterance length) and dispose closes streams", async () => {
  const engine = await SphinxEngine.load({
    config: SMALL_LM_CONFIG,
    maxDecoders: 1,
    keepIdle: 1,
    prewarm: 1,
  });
  const speech = readWav16k(librivoxUtterances()[1].path).subarray(0, 12800); // 0.8 s
  const a = (await engine.openAsrStream()) as SphinxUtteranceStream;
  const b = (await engine.openAsrStream()) as SphinxUtteranceStream;
  feedAll(a, speech);
  feedAll(b, speech); // waits: a holds the only decoder
  assert.equal(b.waitingSamples, speech.length);
  a.finish();
  const rb = engine.pool.take()!; // the free decoder is taken elsewhere: b's finish must overflow
  const created = engine.pool.stats().created;
  b.finish();
  assert.equal(engine.pool.stats().created, created + 1);
  engine.pool.release(rb);
  // audio length check on the decoder level: every waiting sample reached PocketSphinx
  const c = (await engine.openAsrStream()) as SphinxUtteranceStream;
  const other = engine.pool.take()!; // all lent
  feedAll(c, speech);
  engine.pool.release(other);
  c.process(new Float32Array(0)); // takes the freed decoder, feeds the backlog
  assert.ok(c.holdsDecoder);
  const taken = (c as unknown as { decoder: { finish(): { audioMs: number } } }).decoder.finish();
  assert.equal(taken.audioMs, (speech.length * 1000) / 16000, "the decoder heard every waiting sample");
  await engine.dispose();
  await engine.dispose();
  assert.ok(c.closed && a.closed && b.closed, "dispose closes open streams");
  await assert.rejects(engine.openAsrStream(), SphinxClosedError);
});
