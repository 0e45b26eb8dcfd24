import assert from "node:assert/strict";
import { PriorityGate } from "./priority_gate.ts";

Deno.test("priority gate: jobs yield to live work, but at most maxWaitMs under unending live load", async () => {
  const gate = new PriorityGate();
  const unregister = gate.addSource(() => 1); // live work that never drains
  try {
    const t0 = performance.now();
    const waited = await gate.batchTurn({ maxWaitMs: 150 });
    assert.ok(waited >= 140, `yielded only ${waited} ms`);
    assert.ok(performance.now() - t0 < 5_000);
    // without the bound, the job keeps waiting while live work is pending
    const ac = new AbortController();
    const unbounded = gate.batchTurn({ signal: ac.signal }).then(() => "done");
    const first = await Promise.race([unbounded, new Promise((r) => setTimeout(() => r("waiting"), 400))]);
    assert.equal(first, "waiting");
    ac.abort();
    assert.equal(await unbounded, "done");
  } finally {
    unregister();
  }
  assert.equal(await gate.batchTurn({ maxWaitMs: 150 }), 0, "no live work: no wait");
});
