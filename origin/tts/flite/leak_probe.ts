/**
 * Leak probe for flite_test.ts (run as a subprocess): synthesizes N sentences on one engine and prints the RSS
 * (MB) after a warm-up and at the end, as JSON on stdout.
 */
import { FliteEngine } from "./engine.ts";

const n = Number(Deno.args[0] ?? 200);
const rss = () => Deno.memoryUsage().rss / 1e6;
const e = await FliteEngine.load();
const voices = ["kal16", "slt", "rms", "awb", "kal"];
const say = (i: number) =>
  e.synthesize(`Number ${i} of the leak probe, said twice over.`, voices[i % voices.length]);
for (let i = 0; i < 20; i++) await say(i);
const warm = rss();
for (let i = 20; i < n; i++) await say(i);
const end = rss();
await e.close();
console.log(JSON.stringify({ warm, end, calls: n }));
