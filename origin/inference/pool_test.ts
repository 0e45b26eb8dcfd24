import assert from "node:assert/strict";
import { InferencePool } from "./pool.ts";
import { EngineError, OverloadedError, SupersededError, toWire, WorkerCrashedError } from "./errors.ts";
import { ClosedError } from "../../lib/closed_error.ts";
import { configureLogging } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";
import { newVadState } from "../pipeline/vad.ts";

configureLogging({ level: "error", sink: () => {} });

Deno.test("pool: priorities, coalescing and overload shedding of low-priority jobs", async () => {
  const pool = await InferencePool.create({ name: "t-prio", size: 1, init: {}, lowQueueLimit: 2 });
  try {
    const order: string[] = [];
    const track = (name: string, p: Promise<unknown>) =>
      p.then(() => order.push(name), (e) => order.push(`${name}:${e.name}`));
    const all = [
      track("busy", pool.submit({ kind: "sleep", ms: 60 })), // occupies the worker
      track("low1", pool.submit({ kind: "sleep", ms: 1 }, { priority: "low", coalesceKey: "s1" })),
      track("low1b", pool.submit({ kind: "sleep", ms: 1 }, { priority: "low", coalesceKey: "s1" })),
      track("normal", pool.submit({ kind: "sleep", ms: 1 }, { priority: "normal" })),
      track("low2", pool.submit({ kind: "sleep", ms: 1 }, { priority: "low" })), // queue has 2 → refused
      track("high", pool.submit({ kind: "sleep", ms: 1 }, { priority: "high" })),
    ];
    await Promise.all(all);
    assert.deepEqual(order, [
      "low1:SupersededError",
      "low2:OverloadedError",
      "busy",
      "high",
      "normal",
      "low1b",
    ]);
    assert.equal(pool.queueDepth, 0);
  } finally {
    await pool.close();
  }
  assert.ok(SupersededError && OverloadedError);
});

Deno.test("pool: background jobs run after every live priority and never make partials look overloaded", async () => {
  const pool = await InferencePool.create({ name: "t-bg", size: 1, init: {}, lowQueueLimit: 2 });
  try {
    const order: string[] = [];
    const track = (name: string, p: Promise<unknown>) =>
      p.then(() => order.push(name), (e) => order.push(`${name}:${e.name}`));
    const all = [
      track("busy", pool.submit({ kind: "sleep", ms: 60 })),
      track("bg1", pool.submit({ kind: "sleep", ms: 1 }, { priority: "background" })),
      track("bg2", pool.submit({ kind: "sleep", ms: 1 }, { priority: "background" })),
      track("bg3", pool.submit({ kind: "sleep", ms: 1 }, { priority: "background" })),
      track("low", pool.submit({ kind: "sleep", ms: 1 }, { priority: "low" })), // 3 queued, all background
      track("normal", pool.submit({ kind: "sleep", ms: 1 }, { priority: "normal" })),
    ];
    await Promise.all(all);
    assert.deepEqual(order, ["busy", "normal", "low", "bg1", "bg2", "bg3"]);
  } finally {
    await pool.close();
  }
});

Deno.test("pool: promote() moves a queued low-priority job ahead of normal work", async () => {
  const pool = await InferencePool.create({ name: "t-promote", size: 1, init: {} });
  try {
    const order: string[] = [];
    const all = [
      pool.submit({ kind: "sleep", ms: 50 }).then(() => order.push("busy")),
      pool.submit({ kind: "sleep", ms: 1 }, { priority: "normal" }).then(() => order.push("normal")),
      pool.submit({ kind: "sleep", ms: 1 }, { priority: "low", coalesceKey: "spec" }).then(() =>
        order.push("spec")
      ),
    ];
    assert.equal(pool.promote("spec", "high"), true);
    assert.equal(pool.promote("absent", "high"), false);
    await Promise.all(all);
    assert.deepEqual(order, ["busy", "spec", "normal"]);
  } finally {
    await pool.close();
  }
});

Deno.test("pool: a job's error keeps its class across the worker boundary", async () => {
  const pool = await InferencePool.create({ name: "t-errors", size: 1, init: {} });
  try {
    // thrown in the worker as a ClosedError, rebuilt here as one (same message)
    const closed = await pool.submit({
      kind: "fail",
      error: toWire(new ClosedError("test engine", "disposed")),
    })
      .then(() => null, (e) => e);
    assert.ok(closed instanceof ClosedError, String(closed));
    assert.equal(closed.message, "test engine is disposed");
    // a worker without the engine a job needs
    await assert.rejects(pool.submit({ kind: "asr", pcm16k: new Float32Array(160) }), EngineError);
    // classes the pool does not know keep their name
    const other = await pool.submit({ kind: "fail", error: { name: "SomethingElse", message: "x" } })
      .then(() => null, (e) => e);
    assert.ok(other instanceof Error);
    assert.equal(other.name, "SomethingElse");
  } finally {
    await pool.close();
  }
  await assert.rejects(pool.submit({ kind: "sleep", ms: 1 }), ClosedError);
});

Deno.test("pool: a crashed worker is restarted; its job retries once if asked; timeouts restart too", async () => {
  const pool = await InferencePool.create({ name: "t-crash", size: 1, init: {}, jobTimeoutMs: 1500 });
  try {
    await assert.rejects(pool.submit({ kind: "crash" }), WorkerCrashedError);
    // the pool recovers: the next job runs on the respawned worker
    const r = await pool.submit({ kind: "sleep", ms: 5 });
    assert.deepEqual(r, { slept: 5 });
    assert.equal(pool.liveWorkers, 1);
    // a job that never returns hits the job timeout; worker is replaced
    const t0 = performance.now();
    await assert.rejects(pool.submit({ kind: "sleep", ms: 4000 }), /timeout/);
    assert.ok(performance.now() - t0 < 3000);
    assert.deepEqual(await pool.submit({ kind: "sleep", ms: 1 }), { slept: 1 });
  } finally {
    await pool.close();
  }
});

Deno.test("pool: close() is idempotent, rejects queued/in-flight/later jobs and terminates workers", async () => {
  const pool = await InferencePool.create({
    name: "t-close",
    size: 2,
    init: { vad: { intraOpNumThreads: 1 } },
  });
  assert.equal(pool.state, "ready");
  assert.equal(pool.liveWorkers, 2);
  // real model job works
  const s = newVadState();
  const r = await pool.submit({ kind: "vad", items: [{ chunks: new Float32Array(1024), ...s }] }, {
    priority: "high",
  });
  assert.equal(r.probs.length, 1);
  assert.equal(r.probs[0].length, 2);
  assert.ok(r.probs[0][1] < 0.5);
  const inflight = [1, 2, 3].map(() => pool.submit({ kind: "sleep", ms: 300 }));
  await new Promise((r) => setTimeout(r, 20));
  const c1 = pool.close();
  const c2 = pool.close();
  assert.equal(c1, c2);
  for (const p of inflight) await assert.rejects(p, ClosedError);
  await c1;
  assert.equal(pool.state, "closed");
  assert.equal(pool.liveWorkers, 0);
  await assert.rejects(pool.submit({ kind: "sleep", ms: 1 }), ClosedError);
  await pool.close();
});

Deno.test("pool: init failure rejects create and leaves no workers", async () => {
  await assert.rejects(
    InferencePool.create({
      name: "t-bad",
      size: 1,
      init: { vad: { modelPath: "/nonexistent/model.onnx", intraOpNumThreads: 1 } },
    }),
    /init failed/,
  );
});

Deno.test("pool: pinned jobs run only on their worker; its death rejects them; a new pin is a live worker", async () => {
  const pool = await InferencePool.create({ name: "t-pin", size: 2, init: {} });
  try {
    const a = pool.pin()!;
    const b = pool.pin()!;
    assert.notEqual(a.index, b.index, "pins spread over the workers");
    // worker a busy: a's next job waits for it even though worker b is idle; b's jobs run meanwhile
    const order: string[] = [];
    const busyA = pool.submit({ kind: "sleep", ms: 150 }, { worker: a }).then(() => order.push("a1"));
    const a2 = pool.submit({ kind: "sleep", ms: 1 }, { worker: a }).then(() => order.push("a2"));
    const b1 = pool.submit({ kind: "sleep", ms: 1 }, { worker: b }).then(() => order.push("b1"));
    await Promise.all([busyA, a2, b1]);
    assert.deepEqual(order, ["b1", "a1", "a2"]);
    // a crashes with a pinned job queued behind the crash: both reject, nothing runs elsewhere
    const crash = pool.submit({ kind: "crash" }, { worker: a });
    const queued = pool.submit({ kind: "sleep", ms: 1 }, { worker: a });
    await assert.rejects(crash, WorkerCrashedError);
    await assert.rejects(queued, WorkerCrashedError);
    assert.ok(!pool.pinAlive(a));
    // the old pin stays dead even after the worker at its index is respawned
    await assert.rejects(pool.submit({ kind: "sleep", ms: 1 }, { worker: a }), WorkerCrashedError);
    pool.unpin(a);
    const c = pool.pin()!;
    assert.ok(pool.pinAlive(c));
    assert.deepEqual(await pool.submit({ kind: "sleep", ms: 1 }, { worker: c }), { slept: 1 });
  } finally {
    await pool.close();
  }
});

Deno.test("pool: an urgent pinned job overtakes other owners' queued jobs but runs after its own", async () => {
  const pool = await InferencePool.create({ name: "t-urgent", size: 1, init: {} });
  try {
    const w = pool.pin()!;
    const order: string[] = [];
    const job = (name: string, owner: string, priority?: "urgent" | "high" | "normal") =>
      pool.submit({ kind: "sleep", ms: 1 }, { worker: w, owner, priority }).then(() => order.push(name));
    const all = [
      pool.submit({ kind: "sleep", ms: 60 }, { worker: w }).then(() => order.push("busy")),
      job("b1", "b", "high"),
      job("a1", "a", "high"),
      job("b2", "b", "high"),
      job("a2", "a", "high"),
      job("c1", "c", "high"),
      job("a-end", "a", "urgent"), // lifts a1, a2 ahead of b's and c's audio, in their order
      job("b-end", "b", "urgent"), // after a-end (FIFO among urgent), lifting b1, b2
      job("tts", "d", "normal"),
    ];
    await Promise.all(all);
    assert.deepEqual(order, ["busy", "a1", "a2", "a-end", "b1", "b2", "b-end", "c1", "tts"]);
    // unpinned jobs keep plain priority order: an owner's earlier low job is not lifted
    order.length = 0;
    await Promise.all([
      pool.submit({ kind: "sleep", ms: 40 }).then(() => order.push("busy")),
      pool.submit({ kind: "sleep", ms: 1 }, { owner: "s", priority: "low" }).then(() =>
        order.push("partial")
      ),
      pool.submit({ kind: "sleep", ms: 1 }, { owner: "s", priority: "high" }).then(() =>
        order.push("confirmed")
      ),
    ]);
    assert.deepEqual(order, ["busy", "confirmed", "partial"]);
  } finally {
    await pool.close();
  }
});

Deno.test("pool: a worker's own metrics reach the process registry under its worker label, until the pool closes", async () => {
  const pool = await InferencePool.create({ name: "t-metrics", size: 1, init: { metricsEveryMs: 50 } });
  const line = () =>
    registry.render().split("\n").find((l) =>
      l.startsWith('parley_inference_worker_heap_used_bytes{worker="t-metrics-0"} ')
    );
  try {
    await pool.submit({ kind: "sleep", ms: 1 });
    const t0 = performance.now();
    while (!line() && performance.now() - t0 < 5_000) await new Promise((r) => setTimeout(r, 20));
    const l = line();
    assert.ok(l, "the worker's heap gauge is in /metrics");
    assert.ok(Number(l.split(" ")[1]) > 0);
    assert.equal(
      registry.render().split("\n").filter((x) =>
        x === "# TYPE parley_inference_worker_heap_used_bytes gauge"
      )
        .length,
      1,
      "one family header",
    );
  } finally {
    await pool.close();
  }
  assert.equal(line(), undefined, "gone with the pool");
});
