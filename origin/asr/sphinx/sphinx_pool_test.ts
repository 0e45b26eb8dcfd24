import assert from "node:assert/strict";
import { SphinxDecoder } from "./sphinx_decoder.ts";
import { DEFAULT_SPHINX_CONFIG } from "./sphinx_detect.ts";
import { SphinxClosedError } from "./sphinx_errors.ts";
import { SphinxPool } from "./sphinx_pool.ts";
import { assertThrowsKind, requireSphinx } from "./sphinx_testdata.ts";
import { SMALL_LM_CONFIG } from "./sphinx_churn.ts";

requireSphinx();

Deno.test("sphinx pool: bounded, reuses decoders, waiters served FIFO, close cascades and is idempotent", async () => {
  const opened: SphinxDecoder[] = [];
  const pool = new SphinxPool({
    config: DEFAULT_SPHINX_CONFIG,
    maxDecoders: 2,
    openDecoder: (c) => {
      const d = SphinxDecoder.open(c);
      opened.push(d);
      return d;
    },
  });
  const a = await pool.acquire();
  const b = await pool.acquire();
  assert.notEqual(a, b);
  a.start();
  a.process(new Int16Array(3200));
  let third: SphinxDecoder | null = null;
  const waiting = pool.acquire().then((d) => (third = d));
  const aborted = new AbortController();
  const fourth = pool.acquire(aborted.signal);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(third, null, "a third decoder beyond the bound");
  assert.deepEqual(pool.stats(), { idle: 0, lent: 2, waiting: 2, created: 2, freed: 0, building: 0 });
  aborted.abort(new Error("caller gave up"));
  await assert.rejects(fourth, /caller gave up/);
  pool.release(a); // mid-utterance: reset, then handed to the first waiter
  await waiting;
  assert.equal(third, a);
  assert.equal(a.inUtterance, false);
  assert.equal(opened.length, 2);
  assert.throws(() => pool.release(SphinxDecoder.prototype as SphinxDecoder), /did not lend/);

  const late = pool.acquire(); // waits: both lent
  pool.close();
  pool.close();
  await assert.rejects(late, SphinxClosedError);
  for (const d of opened) assert.ok(d.closed, "close() frees lent decoders too");
  pool.release(b); // after close: harmless
  await assert.rejects(pool.acquire(), SphinxClosedError);
  assertThrowsKind(() => pool.prewarm(1), SphinxClosedError, "closed");
});

Deno.test("sphinx pool: prewarm builds up to the bound; a decoder closed by its user is replaced", async () => {
  const pool = new SphinxPool({ config: DEFAULT_SPHINX_CONFIG, maxDecoders: 1 });
  try {
    pool.prewarm(3);
    assert.deepEqual(pool.stats(), { idle: 1, lent: 0, waiting: 0, created: 1, freed: 0, building: 0 });
    const d = await pool.acquire();
    d.close();
    pool.release(d); // dropped, not reused
    const e = await pool.acquire();
    assert.notEqual(e, d);
    assert.equal(pool.stats().created, 2);
    pool.release(e);
  } finally {
    pool.close();
  }
});

Deno.test("sphinx pool: idle decoders beyond keepIdle are freed; refill keeps one warm; overflow is freed", () => {
  const pool = new SphinxPool({ config: SMALL_LM_CONFIG, maxDecoders: 3, keepIdle: 1, warmIdle: 1 });
  try {
    pool.prewarm(5);
    assert.deepEqual(
      pool.stats(),
      { idle: 1, lent: 0, waiting: 0, created: 1, freed: 0, building: 0 },
      "prewarm stops at keepIdle",
    );
    const a = pool.take()!, b = pool.take()!, c = pool.take()!;
    assert.equal(pool.take(), null, "a fourth within the bound of 3");
    assert.equal(pool.refill(), false, "no refill at the bound");
    const over = pool.takeOverflow();
    assert.equal(pool.alive, 4);
    for (const d of [a, b, c]) d.start();
    pool.release(over); // over the bound: freed
    assert.ok(over.closed);
    pool.release(a); // kept idle, reset
    assert.ok(!a.closed && !a.inUtterance);
    pool.release(b); // beyond keepIdle: freed
    pool.release(c);
    assert.ok(b.closed && c.closed);
    assert.deepEqual(pool.stats(), { idle: 1, lent: 0, waiting: 0, created: 4, freed: 3, building: 0 });
    assert.equal(pool.take(), a, "the warm decoder is reused");
    assert.equal(pool.refill(), true, "a lend leaves none idle: refill builds one");
    assert.equal(pool.refill(), false, "one warm is enough");
    pool.release(a); // idle is full: freed
    assert.deepEqual(pool.stats(), { idle: 1, lent: 0, waiting: 0, created: 5, freed: 4, building: 0 });
  } finally {
    pool.close();
  }
  assert.equal(pool.stats().freed, 5);
  assertThrowsKind(() => pool.take(), SphinxClosedError, "closed");
  assert.equal(pool.refill(), false);
});

Deno.test("sphinx pool: with an idle timeout, surplus decoders stay for reuse and are freed once idle long enough", () => {
  let now = 0;
  const pool = new SphinxPool({
    config: SMALL_LM_CONFIG,
    maxDecoders: 4,
    keepIdle: 1,
    idleTimeoutMs: 60_000,
    now: () => now,
  });
  try {
    const lent = [pool.take()!, pool.take()!, pool.take()!];
    assert.equal(pool.stats().created, 3);
    for (const d of lent) pool.release(d);
    // Kept (not freed at once): the next burst of three reuses them without a model load.
    assert.deepEqual(pool.stats(), { idle: 3, lent: 0, waiting: 0, created: 3, freed: 0, building: 0 });
    const again = [pool.take()!, pool.take()!, pool.take()!];
    assert.equal(pool.stats().created, 3);
    // Released at different times: only those idle for the timeout go, oldest first, down to keepIdle.
    pool.release(again[0]);
    now = 30_000;
    pool.release(again[1]);
    pool.release(again[2]);
    assert.equal(pool.trimIdle(), 0, "nothing idle for a minute yet");
    now = 60_000;
    assert.equal(pool.trimIdle(), 1);
    assert.ok(again[0].closed, "the oldest idle one is freed");
    assert.deepEqual(pool.stats(), { idle: 2, lent: 0, waiting: 0, created: 3, freed: 1, building: 0 });
    now = 200_000;
    assert.equal(pool.trimIdle(), 1);
    assert.deepEqual(pool.stats(), { idle: 1, lent: 0, waiting: 0, created: 3, freed: 2, building: 0 });
    assert.equal(pool.trimIdle(), 0, "keepIdle stays");
    assert.equal(pool.take(), again[2], "the most recently released is lent first");
  } finally {
    pool.close();
  }
  assert.equal(pool.trimIdle(), 0, "after close: nothing to do");
});

Deno.test("sphinx pool: off-thread builds — take() never loads a model in place, waiters get the build, close frees late builds", async () => {
  let inPlace = 0;
  const pool = new SphinxPool({
    config: SMALL_LM_CONFIG,
    maxDecoders: 3,
    keepIdle: 1,
    warmIdle: 1,
    asyncBuilds: true,
    openDecoder: (c) => {
      inPlace++;
      return SphinxDecoder.open(c);
    },
  });
  try {
    assert.equal(pool.take(), null, "none idle: a build starts, the caller keeps its audio");
    assert.equal(pool.stats().building, 1);
    assert.equal(inPlace, 0);
    await pool.settled();
    assert.deepEqual(pool.stats(), { idle: 1, lent: 0, waiting: 0, created: 1, freed: 0, building: 0 });
    const a = pool.take()!;
    assert.ok(a, "the landed build is lent");
    // refill() keeps warmIdle ready off-thread; a waiting acquire is served by the next landed build.
    assert.equal(pool.refill(), false);
    assert.equal(pool.stats().building, 1);
    const b = await pool.acquire(); // takes the refill's build (or waits for it)
    assert.notEqual(a, b);
    const c = await pool.acquire();
    assert.deepEqual({ ...pool.stats(), building: 0 }, {
      idle: 0,
      lent: 3,
      waiting: 0,
      created: 3,
      freed: 0,
      building: 0,
    });
    assert.equal(pool.take(), null, "at the bound: no build");
    assert.equal(pool.stats().building, 0);
    assert.equal(inPlace, 0, "no model was loaded on the caller's thread");
    for (const d of [a, b, c]) pool.release(d);
    // A build in flight at close is freed when it lands.
    const late = pool.take()!;
    pool.release(late);
    pool.close();
  } finally {
    pool.close();
  }
  await pool.settled();
  assert.equal(pool.stats().building, 0);
});

Deno.test("sphinx pool: a failing off-thread build is counted, and the next take builds in place and reports the error", async () => {
  const pool = new SphinxPool({
    config: SMALL_LM_CONFIG,
    maxDecoders: 2,
    asyncBuilds: true,
    openDecoderAsync: () => Promise.reject(new Error("model gone")),
    openDecoder: () => {
      throw new Error("model gone (in place)");
    },
  });
  try {
    assert.equal(pool.take(), null);
    await pool.settled();
    assert.throws(() => pool.take(), /model gone \(in place\)/);
  } finally {
    pool.close();
  }
});
