import assert from "node:assert/strict";
import { LocalAgreement } from "./stability.ts";

Deno.test("LocalAgreement: stable prefix grows, never shrinks, and stable + unstable === text", () => {
  const la = new LocalAgreement();
  const hyps = [
    "hello",
    "hello there",
    "hello there how",
    "Hello, there! who are",
    "hello there how are you",
    "hello there how are you today",
    "hello there how are you today",
  ];
  const stables: string[] = [];
  for (const h of hyps) {
    const r = la.update(h);
    assert.equal(r.stable + r.unstable, r.text);
    stables.push(r.stable);
  }
  assert.deepEqual(stables, [
    "",
    "hello",
    "hello there",
    "hello there", // "who" disagrees with "how": nothing new is committed, punctuation ignored
    "hello there",
    "hello there how are you",
    "hello there how are you today",
  ]);
  for (let i = 1; i < stables.length; i++) assert.ok(stables[i].startsWith(stables[i - 1]));
  // a later hypothesis that contradicts committed words keeps the committed prefix
  const r = la.update("yellow fair");
  assert.equal(r.stable, "hello there how are you today");
  la.reset();
  assert.equal(la.update("new segment").stable, "");
});
