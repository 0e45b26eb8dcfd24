import assert from "node:assert/strict";
import { Registry } from "./metrics.ts";

Deno.test("metrics: a worker's snapshot renders under its worker label, merged into the local family", () => {
  const worker = new Registry();
  worker.counter("parley_x_total", "x").inc({ kind: "a" }, 3);
  worker.gauge("parley_empty", "never set"); // an empty worker metric adds nothing
  worker.histogram("parley_h_seconds", "h", [0.1, 1]).observe(0.5);
  const main = new Registry();
  main.counter("parley_x_total", "x").inc({ kind: "a" });
  main.setRemote("speech-0", structuredClone(worker.snapshot()));
  main.setRemote("speech-1", structuredClone(worker.snapshot()));
  const text = main.render();
  assert.equal(text.split("\n").filter((l) => l === "# TYPE parley_x_total counter").length, 1);
  assert.ok(text.includes('parley_x_total{kind="a"} 1\n'));
  assert.ok(text.includes('parley_x_total{worker="speech-0",kind="a"} 3\n'));
  assert.ok(text.includes('parley_x_total{worker="speech-1",kind="a"} 3\n'));
  assert.ok(text.includes('parley_h_seconds_bucket{worker="speech-0",le="1"} 1\n'));
  assert.ok(text.includes('parley_h_seconds_count{worker="speech-1"} 1\n'));
  assert.ok(!text.includes("parley_empty"), "nothing rendered for a worker's empty gauge");
  // the local render did not change through the merge
  assert.equal(main.render(), text);
  main.setRemote("speech-0", null);
  assert.ok(!main.render().includes('worker="speech-0"'));
  assert.ok(main.render().includes('worker="speech-1"'));
});

Deno.test("metrics: a worker family whose type differs from the local one is left out, not mixed in", () => {
  const worker = new Registry();
  worker.gauge("parley_y", "y").set(5);
  const main = new Registry();
  main.counter("parley_y", "y").inc();
  main.setRemote("w-0", worker.snapshot());
  const text = main.render();
  assert.ok(text.includes("# TYPE parley_y counter\nparley_y 1"));
  assert.ok(!text.includes('worker="w-0"'));
});

Deno.test("metrics: a counter's bound label set counts into the same series as inc(labels)", () => {
  const r = new Registry();
  const c = r.counter("t_bound_total", "test");
  const direct = c.with({ path: "direct", b: 1 });
  direct.inc();
  direct.inc(2);
  c.inc({ b: 1, path: "direct" });
  assert.equal(c.get({ path: "direct", b: 1 }), 4);
  assert.match(r.render(), /t_bound_total\{b="1",path="direct"\} 4/);
});
