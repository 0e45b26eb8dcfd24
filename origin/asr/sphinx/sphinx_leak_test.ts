/**
 * Native memory is freed: decoders built and closed 200 times, and utterances through a pool, in a child
 * process; threads and fds stay flat and anonymous-memory growth after warm-up stays far below one leaked
 * decoder per cycle (VmRSS is reported too, but mapped model pages make it move with the page cache).
 * A control run that never closes its decoders must show the growth this test looks for.
 */
import assert from "node:assert/strict";
import type { ChurnSample } from "./sphinx_churn.ts";
import { requireSphinx } from "./sphinx_testdata.ts";

requireSphinx();

async function churn(mode: string, n: number): Promise<Record<string, ChurnSample>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./sphinx_churn.ts", import.meta.url).pathname, mode, String(n)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.ok(out.success, `churn ${mode} failed: ${new TextDecoder().decode(out.stderr)}`);
  const samples = text.trim().split("\n").map((l) => JSON.parse(l) as ChurnSample);
  return Object.fromEntries(samples.map((s) => [s.phase, s]));
}

function report(name: string, s: Record<string, ChurnSample>) {
  const growth = s.end.anonKb - s.warm.anonKb;
  console.log(
    `${name}: RSS ${s.start.rssKb} → ${s.warm.rssKb} (warm, ${s.warm.cycles}) → ${s.end.rssKb} kB (${s.end.cycles}); ` +
      `anonymous ${s.start.anonKb} → ${s.warm.anonKb} → ${s.end.anonKb} kB, growth after warm-up ${growth} kB; threads ${s.warm.threads} → ${s.end.threads}; fds ${s.warm.fds} → ${s.end.fds}`,
  );
  return growth;
}

Deno.test("sphinx leak: the measurement sees a decoder that is never freed (control)", async () => {
  const s = await churn("leak", 6);
  const perDecoder = (s.end.anonKb - s.warm.anonKb) / (s.end.cycles - s.warm.cycles);
  report("leak control", s);
  assert.ok(perDecoder > 2000, `a leaked decoder costs only ${perDecoder} kB?`);
});

/** Anonymous memory grew less than `maxKb` after warm-up; threads did not grow; fds flat. */
function assertFlat(s: Record<string, ChurnSample>, growth: number, maxKb: number, what: string) {
  assert.ok(
    growth < maxKb,
    `anonymous memory grew ${growth} kB over ${s.end.cycles - s.warm.cycles} ${what}`,
  );
  assert.ok(s.end.threads <= s.warm.threads, `threads ${s.warm.threads} → ${s.end.threads}`);
  assert.equal(s.end.fds, s.warm.fds);
}

Deno.test("sphinx leak: 80 decoders opened, used and closed: memory bounded, threads and fds flat", async () => {
  const s = await churn("decoders", 80);
  // one leaked decoder is several MB (control above); the cycles after warm-up must stay under ~2 of them
  assertFlat(s, report("80 decoders", s), 10_000, "decoders");
});

Deno.test("sphinx leak: 40 utterances through a pool of 2: memory bounded, threads and fds flat", async () => {
  const s = await churn("pool", 40);
  assertFlat(s, report("40 pooled utterances", s), 10_000, "utterances");
});
