import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { HmacSha1 } from "./hmac_sha1.ts";

Deno.test("HmacSha1: equals node:crypto's HMAC-SHA1 for keys of 0–64 bytes and messages in 1–3 parts", () => {
  for (let round = 0; round < 400; round++) {
    const key = randomBytes(round % 65);
    const total = (round * 37) % 300;
    const msg = randomBytes(total);
    const cuts = [0, Math.floor(Math.random() * (total + 1)), total].sort((a, b) => a - b);
    const mac = new HmacSha1(key);
    mac.begin();
    mac.update(msg, cuts[0], cuts[1]).update(msg.subarray(cuts[1]), 0);
    const out = new Uint8Array(24);
    mac.finish(out, 2, 20);
    const want = createHmac("sha1", key).update(msg).digest();
    assert.deepEqual(out.subarray(2, 22), new Uint8Array(want), `key ${key.length} B, message ${total} B`);
  }
});

Deno.test("HmacSha1: one instance serves message after message; a truncated tag is the digest's prefix", () => {
  const key = randomBytes(20);
  const mac = new HmacSha1(key);
  for (const len of [0, 55, 56, 63, 64, 65, 119, 128, 1500]) {
    const msg = randomBytes(len);
    const tag = new Uint8Array(10);
    mac.begin().update(msg).finish(tag, 0, 10);
    assert.deepEqual(
      tag,
      new Uint8Array(createHmac("sha1", key).update(msg).digest().subarray(0, 10)),
      `${len} B`,
    );
  }
});

Deno.test("HmacSha1: misuse is refused, not silently wrong", () => {
  assert.throws(() => new HmacSha1(new Uint8Array(65)), RangeError);
  const mac = new HmacSha1(new Uint8Array(20));
  assert.throws(() => mac.update(new Uint8Array(1)), /before begin/);
  assert.throws(() => mac.finish(new Uint8Array(20)), /before begin/);
  mac.begin().finish(new Uint8Array(20));
  assert.throws(() => mac.finish(new Uint8Array(20)), /before begin/);
});
