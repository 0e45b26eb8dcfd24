/**
 * First audio of a `say`, flite vs espeak side by side: the time from submitting the first sentence of a say to
 * its 48 kHz PCM back from the inference workers (the pipeline's synthesis path, EngineHub; no WebRTC), p50/p90
 * over `--n` short sentences per engine after a warm-up. Flags: `--n N` (default 20).
 */
import { EngineHub } from "../origin/pipeline/engine_hub.ts";
import { engineHubConfig } from "../origin/engine_config.ts";
import { parseConfig } from "../lib/config.ts";
import type { TtsEngineName } from "../protocol/engines.ts";

const i = Deno.args.indexOf("--n");
const n = i >= 0 ? Number(Deno.args[i + 1]) : 20;
const sentences = (await Deno.readTextFile(new URL("voice_judge_sentences.txt", import.meta.url)))
  .split("\n").map((s) => s.trim()).filter((s) => s && !s.startsWith("#"));
const q = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];

const rows: string[] = [];
for (const engine of ["flite", "espeak"] as TtsEngineName[]) {
  const hub = await EngineHub.create({ ...engineHubConfig(parseConfig({ TTS_ENGINE: engine })), workers: 1 });
  try {
    for (const s of sentences.slice(0, 3)) await hub.synthesize(s, { outRate: 48000 });
    const ms: number[] = [];
    for (const s of sentences.slice(3, 3 + n)) {
      const t0 = performance.now();
      await hub.synthesize(s.split(/(?<=[.!?])\s/)[0], { outRate: 48000 });
      ms.push(performance.now() - t0);
    }
    rows.push(`| ${engine} | ${q(ms, 0.5).toFixed(1)} | ${q(ms, 0.9).toFixed(1)} | ${ms.length} |`);
  } finally {
    await hub.close();
  }
}
console.log(`load average: ${Deno.loadavg().map((x) => x.toFixed(1)).join(" ")}`);
console.log("| engine | first audio p50 ms | p90 ms | sentences |\n|---|---|---|---|");
for (const r of rows) console.log(r);
