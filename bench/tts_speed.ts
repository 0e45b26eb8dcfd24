/**
 * TTS speed: synthesized audio seconds per CPU second, per engine (goal ≥ 25 for espeak).
 *   deno run -A --unstable-worker-options bench/tts_speed.ts [--engine espeak|vits] [--n 40]
 * Measures (a) the engine in this process (pure engine speed; CPU from /proc/self/stat) and (b) through the
 * inference worker pool as the live pipeline uses it (48 kHz output, resampling included).
 */
import { loadSynthesisEngine } from "../origin/tts/factory.ts";
import type { TtsEngineName } from "../protocol/engines.ts";
import { ttsConfig } from "../origin/engine_config.ts";
import { parseConfig } from "../lib/config.ts";
import { InferencePool } from "../origin/inference/pool.ts";
import { configureLogging } from "../lib/log.ts";
import { cpuSeconds, pipelineSentences } from "./pipeline_util.ts";

configureLogging({ level: "warn" });
const args = Deno.args;
const arg = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const engines = (arg("engine", "espeak,vits")).split(",") as TtsEngineName[];
const n = Number(arg("n", "40"));
const texts = pipelineSentences(n);

const rows: string[][] = [];
for (const engine of engines) {
  const cfg = {
    ...ttsConfig(parseConfig({ TTS_ENGINE: engine })),
    vitsModel: arg("vits-model", "tiny-vits"),
  };
  let e;
  try {
    e = await loadSynthesisEngine(cfg);
  } catch (err) {
    rows.push([
      engine,
      "in-process",
      "-",
      "-",
      "-",
      "-",
      `load failed: ${(err as Error).message.slice(0, 60)}`,
    ]);
    continue;
  }
  for (const t of texts.slice(0, 4)) await e.synthesize(t); // warm up (WASM tier-up, first-call setup)
  let audio = 0;
  const c0 = cpuSeconds(), w0 = performance.now();
  for (const t of texts) audio += (await e.synthesize(t)).durationMs / 1000;
  const cpu = cpuSeconds() - c0, wall = (performance.now() - w0) / 1000;
  await e.close();
  rows.push([
    engine,
    "in-process",
    String(texts.length),
    audio.toFixed(1),
    cpu.toFixed(2),
    (audio / cpu).toFixed(1),
    (audio / wall).toFixed(1),
  ]);

  // through the pool (2 workers), 48 kHz output as queued for playout
  const pool = await InferencePool.create({ name: `tts-bench-${engine}`, size: 2, init: { tts: cfg } });
  // warm up both workers (WASM tier-up, first-call setup): steady state is what sessions see
  await Promise.all(texts.slice(0, 8).map((text) => pool.submit({ kind: "tts", text, outRate: 48000 })));
  const c1 = cpuSeconds(), w1 = performance.now();
  const results = await Promise.all(texts.map((text) => pool.submit({ kind: "tts", text, outRate: 48000 })));
  const cpu2 = cpuSeconds() - c1, wall2 = (performance.now() - w1) / 1000;
  const audio2 = results.reduce((s, r) => s + r.durationMs / 1000, 0);
  await pool.close();
  rows.push([
    engine,
    "pool×2 → 48k",
    String(texts.length),
    audio2.toFixed(1),
    cpu2.toFixed(2),
    (audio2 / cpu2).toFixed(1),
    (audio2 / wall2).toFixed(1),
  ]);
}

const head = ["engine", "path", "sentences", "audio s", "CPU s", "audio s / CPU s", "audio s / wall s"];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (r: string[]) => "| " + r.map((c, i) => c.padEnd(widths[i])).join(" | ") + " |";
console.log(`TTS speed (${navigator.hardwareConcurrency} cores, load avg ${Deno.loadavg()[0].toFixed(2)})`);
console.log(line(head));
console.log("|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|");
for (const r of rows) console.log(line(r));
console.log("vits timings are estimated (engine gives none); tiny-vits is a test model, not a real voice.");
