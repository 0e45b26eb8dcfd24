import assert from "node:assert/strict";
import { ntp64OfEpochMs, NTP_EPOCH_OFFSET_S } from "./ntp_time.ts";

Deno.test("ntp64OfEpochMs: seconds since 1900 above, 2^-32 fractions below", () => {
  assert.equal(ntp64OfEpochMs(0), BigInt(NTP_EPOCH_OFFSET_S) << 32n);
  // 2026-12-07T00:00:00.500Z: half a second is 2^31.
  const ms = Date.UTC(2026, 11, 7, 0, 0, 0, 500);
  const ntp = ntp64OfEpochMs(ms);
  assert.equal(Number(ntp >> 32n), Math.floor(ms / 1000) + NTP_EPOCH_OFFSET_S);
  assert.equal(Number(ntp & 0xffffffffn), 2 ** 31);
  // A quarter of a millisecond is kept (2^32 / 4000 units), not rounded to the millisecond.
  const q = ntp64OfEpochMs(ms + 0.25) - ntp;
  assert.equal(q, BigInt(Math.floor(2 ** 32 / 4000)));
});

Deno.test("ntp64OfEpochMs: the fraction never carries into the seconds", () => {
  const ntp = ntp64OfEpochMs(Date.UTC(2026, 0, 1) + 999.999);
  assert.ok(Number(ntp & 0xffffffffn) > 0.9999 * 2 ** 32);
  assert.equal(Number(ntp >> 32n), Date.UTC(2026, 0, 1) / 1000 + NTP_EPOCH_OFFSET_S);
});
