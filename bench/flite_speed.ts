/**
 * flite speed: audio seconds per CPU second of one engine instance (one runtime), per voice, and first-sentence
 * latency (module compile, first synthesis on a new runtime, warm synthesis).
 *   deno run -A bench/flite_speed.ts [--n 40]
 * CPU from /proc/self/stat (process total), so the numbers hold on a loaded machine where wall time does not.
 */
import { compiledFlite } from "../origin/tts/flite/runtime.ts";
import { FliteEngine } from "../origin/tts/flite/engine.ts";
import { FLITE_VOICES } from "../origin/tts/flite/voices.ts";
import { configureLogging } from "../lib/log.ts";
import { cpuSeconds, pipelineSentences } from "./pipeline_util.ts";

configureLogging({ level: "warn" });
const i = Deno.args.indexOf("--n");
const n = i >= 0 ? Number(Deno.args[i + 1]) : 40;
const texts = pipelineSentences(n);

const timed = async <T>(f: () => Promise<T>) => {
  const w = performance.now(), c = cpuSeconds();
  const r = await f();
  return { r, wallMs: performance.now() - w, cpuMs: (cpuSeconds() - c) * 1000 };
};

const compile = await timed(() => compiledFlite());
const engine = await FliteEngine.load();
const first = await timed(() => engine.synthesize(texts[0], "rms"));
const warm = await timed(() => engine.synthesize(texts[1], "rms"));
console.log(`module compile: wall ${compile.wallMs.toFixed(0)} ms, cpu ${compile.cpuMs.toFixed(0)} ms`);
console.log(
  `first sentence on a new runtime (instantiate + synthesize, rms, ${
    (first.r.durationMs / 1000).toFixed(1)
  } s audio): ` +
    `wall ${first.wallMs.toFixed(0)} ms, cpu ${first.cpuMs.toFixed(0)} ms`,
);
console.log(`warm sentence (rms): wall ${warm.wallMs.toFixed(0)} ms, cpu ${warm.cpuMs.toFixed(0)} ms`);

console.log(`\nflite speed, ${n} sentences per voice, one runtime`);
console.log("| voice | audio s | cpu s | audio s per cpu s | p50 wall ms per sentence |");
console.log("|---|---|---|---|---|");
for (const v of FLITE_VOICES) {
  await engine.synthesize(texts[0], v.id);
  let audio = 0;
  const walls: number[] = [];
  const c0 = cpuSeconds();
  for (const t of texts) {
    const w = performance.now();
    const r = await engine.synthesize(t, v.id);
    walls.push(performance.now() - w);
    audio += r.durationMs / 1000;
  }
  const cpu = cpuSeconds() - c0;
  walls.sort((a, b) => a - b);
  console.log(
    `| ${v.id} | ${audio.toFixed(1)} | ${cpu.toFixed(2)} | ${(audio / cpu).toFixed(1)} | ${
      walls[Math.floor(walls.length / 2)].toFixed(0)
    } |`,
  );
}
await engine.close();
