import assert from "node:assert/strict";
import { TimeStretcher } from "./time_stretch.ts";

function tone(n: number): Int16Array {
  const x = new Int16Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.round(8000 * Math.sin(i * 0.05));
  return x;
}

for (const speed of [0.5, 1.5, 2]) {
  Deno.test(`time stretch ×${speed}: duration scales by 1/speed, streamed in pieces`, async () => {
    const s = await TimeStretcher.create(22050, speed);
    let out = 0;
    const input = tone(22050 * 2);
    for (let i = 0; i < input.length; i += 2205) out += s.write(input.subarray(i, i + 2205)).length;
    out += s.end().length;
    const want = input.length / speed;
    assert.ok(Math.abs(out - want) / want < 0.05, `got ${out}, want ≈${want}`);
    s.close(); // idempotent after end()
  });
}

Deno.test("time stretch: close is idempotent and write after close throws", async () => {
  const s = await TimeStretcher.create(16000, 1.25);
  s.close();
  s.close();
  assert.throws(() => s.write(new Int16Array(10)));
});
