/**
 * First audio of a `say`, flite vs espeak side by side, through the inference workers (EngineHub; no WebRTC):
 *
 *  - `sentence`: one first sentence submitted alone (the synthesis itself: engine, timings, 48 kHz resampling);
 *  - `say`: a two-sentence `say` on a real pipeline (mode say, `ASR_WORKERS` speech workers as configured,
 *    default 2), from `say()` to the first audio queued for playout: what a session's client waits for.
 *
 * p50/p90 over `--n` held-out sentences per engine after a warm-up of three. Flags: `--n N` (default 20).
 */
import { EngineHub } from "../origin/pipeline/engine_hub.ts";
import { engineHubConfig } from "../origin/engine_config.ts";
import { FakeHost } from "../origin/pipeline/host_double.ts";
import { parseConfig } from "../lib/config.ts";
import { SessionOptions } from "../protocol/session_messages.ts";
import type { TtsEngineName } from "../protocol/engines.ts";

const i = Deno.args.indexOf("--n");
const n = i >= 0 ? Number(Deno.args[i + 1]) : 20;
const sentences = (await Deno.readTextFile(new URL("voice_judge_sentences.txt", import.meta.url)))
  .split("\n").map((s) => s.trim()).filter((s) => s && !s.startsWith("#"));
const q = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
const first = (s: string) => s.split(/(?<=[.!?])\s/)[0];

const rows: string[] = [];
for (const engine of ["flite", "espeak"] as TtsEngineName[]) {
  const hub = await EngineHub.create({
    ...engineHubConfig(parseConfig({ TTS_ENGINE: engine, ASR_ENGINE: "ctc" })),
    initTimeoutMs: 600_000, // a loaded shared machine loads the workers slowly; this measures what comes after
  });
  const host = new FakeHost(`bench-${engine}`, "bench", false);
  let firstAudio: (() => void) | null = null;
  const enqueue = host.outbound.enqueue.bind(host.outbound);
  host.outbound.enqueue = (id, pcm) => {
    firstAudio?.();
    firstAudio = null;
    enqueue(id, pcm);
  };
  const p = hub.createPipeline(host, SessionOptions.parse({ mode: "say" }));
  try {
    for (const s of sentences.slice(0, 3)) await p.say(s);
    host.outbound.clear();
    const sentence: number[] = [];
    for (const s of sentences.slice(3, 3 + n)) {
      const t0 = performance.now();
      await hub.synthesize(first(s), { outRate: 48000 });
      sentence.push(performance.now() - t0);
    }
    const say: number[] = [];
    for (let k = 3 + n; k < 3 + 2 * n; k++) {
      const text = `${first(sentences[k % sentences.length])} ${
        first(sentences[(k + 1) % sentences.length])
      }`;
      const got = new Promise<number>((res) => {
        const t0 = performance.now();
        firstAudio = () => res(performance.now() - t0);
      });
      const done = p.say(text);
      say.push(await got);
      await done;
      host.outbound.clear();
    }
    rows.push(
      `| ${engine} | ${q(sentence, 0.5).toFixed(1)} | ${q(sentence, 0.9).toFixed(1)} | ${
        q(say, 0.5).toFixed(1)
      } | ${q(say, 0.9).toFixed(1)} | ${n} |`,
    );
  } finally {
    await p.close();
    host.close();
    await hub.close();
  }
}
console.log(`load average: ${Deno.loadavg().map((x) => x.toFixed(1)).join(" ")}`);
console.log(
  "| engine | sentence p50 ms | sentence p90 ms | say first audio p50 ms | say p90 ms | trials each |\n" +
    "|---|---|---|---|---|---|",
);
for (const r of rows) console.log(r);
