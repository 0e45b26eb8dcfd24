import assert, { deepEqual as assertEquals } from "node:assert/strict";
import { StreamBatcher } from "./stream_batcher.ts";

interface Req {
  stream: string;
  n: number;
  done: (batchNo: number) => void;
}

Deno.test("stream batcher: requests that arrive during a trip share the next one, one per stream, in order", async () => {
  const batches: string[][] = [];
  let release: () => void = () => {};
  const b = new StreamBatcher<string, Req>(async (batch) => {
    batches.push(batch.map((r) => `${r.stream}${r.n}`));
    const no = batches.length;
    if (no === 1) await new Promise<void>((r) => release = r);
    for (const r of batch) r.done(no);
    return true;
  }, 2);
  const seen: [string, number][] = [];
  const push = (stream: string, n: number) =>
    new Promise<void>((resolve) =>
      b.push({
        stream,
        n,
        done: (no) => {
          seen.push([`${stream}${n}`, no]);
          resolve();
        },
      })
    );
  const first = push("a", 1);
  await new Promise((r) => setTimeout(r, 0));
  assert(b.busy);
  // while trip 1 runs: a2, a3 (same stream: separate trips, in order), b1, c1 (maxBatch 2)
  const rest = [push("a", 2), push("a", 3), push("b", 1), push("c", 1)];
  assertEquals(b.queued, 4);
  release();
  await Promise.all([first, ...rest]);
  assertEquals(batches, [["a1"], ["a2", "b1"], ["a3", "c1"]]);
  assertEquals(seen.map(([k]) => k), ["a1", "a2", "b1", "a3", "c1"]);
  assert(!b.busy);
});

Deno.test("stream batcher: other work keeps the loop going; a false answer stops it", async () => {
  let chores = 3;
  let trips = 0;
  const b = new StreamBatcher<string, Req>(
    () => {
      trips++;
      chores--;
      return Promise.resolve(trips < 2);
    },
    4,
    () => chores > 0,
  );
  b.kick();
  await new Promise((r) => setTimeout(r, 5));
  assertEquals(trips, 2, "the second trip answered false");
  assertEquals(chores, 1, "left for a later kick");
});
