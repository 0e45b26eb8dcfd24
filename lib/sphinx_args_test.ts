import assert from "node:assert/strict";
import { parseSphinxArgs } from "./sphinx_args.ts";

Deno.test("sphinx args: -name value pairs, any whitespace", () => {
  assert.deepEqual(parseSphinxArgs(undefined), []);
  assert.deepEqual(parseSphinxArgs("  "), []);
  assert.deepEqual(parseSphinxArgs(" -beam 1e-60\t-pl_window   5\n"), ["-beam", "1e-60", "-pl_window", "5"]);
});

Deno.test("sphinx args: generated bad input is a RangeError naming the problem", () => {
  const names = ["-beam", "-maxhmmpf", "-pl_window"];
  let n = 0;
  for (let seed = 1; seed <= 200; seed++) {
    const r = (k: number) => (seed * 7919 + k * 104729) % 97;
    const tokens: string[] = [];
    for (let i = 0; i < 1 + (r(0) % 5); i++) {
      tokens.push(names[r(i + 1) % names.length], String(r(i + 7)));
    }
    // Break it: drop a value, or make a name not a name.
    const bad = r(9) % 2 === 0
      ? tokens.slice(0, -1)
      : tokens.map((t, i) =>
        i === 2 * (r(10) % (tokens.length / 2)) ? ["beam", "--", "-1x", "-"][r(11) % 4] : t
      );
    assert.throws(() => parseSphinxArgs(bad.join(" ")), RangeError, bad.join(" "));
    n++;
  }
  assert.equal(n, 200);
});
