/**
 * First audio of a `say`, with and without the lead piece (origin/pipeline/speaker.ts), flite vs espeak, through
 * the inference workers (EngineHub; no WebRTC), in one run:
 *
 *  - `say whole`: a two-sentence `say` on a real pipeline with `sayLeadPiece: false` (the first sentence is
 *    synthesized whole before any audio is queued), from `say()` to the first audio queued for playout;
 *  - `say lead`: the same on a pipeline with the lead piece (the default);
 *  - `job chunk`: a TTS job's first chunk (protocol/tts_text.ts chunking, 24 kHz) through the same workers: the
 *    job path, which the lead piece does not touch.
 *
 * The three are interleaved trial by trial (same load for each); `--n` held-out sentence pairs per engine
 * (default 20) after a warm-up of three. p50/p95, and the load average at the start and the end.
 */
import { EngineHub } from "../origin/pipeline/engine_hub.ts";
import { engineHubConfig } from "../origin/engine_config.ts";
import { FakeHost } from "../origin/pipeline/host_double.ts";
import type { StreamingPipeline } from "../origin/pipeline/speech_pipeline.ts";
import { parseConfig } from "../lib/config.ts";
import { configureLogging } from "../lib/log.ts";
import { SessionOptions } from "../protocol/session_messages.ts";
import { chunkText } from "../protocol/tts_text.ts";
import type { TtsEngineName } from "../protocol/engines.ts";

configureLogging({ level: "warn" });
const arg = (name: string) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
};
const n = Number(arg("--n") ?? 20);
const engines = (arg("--engines") ?? "flite,espeak").split(",") as TtsEngineName[];
const sentences = (await Deno.readTextFile(new URL("voice_judge_sentences.txt", import.meta.url)))
  .split("\n").map((s) => s.trim()).filter((s) => s && !s.startsWith("#"));
const q = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
const first = (s: string) => s.split(/(?<=[.!?])\s/)[0];
const load = () => Deno.loadavg().map((x) => x.toFixed(1)).join(" ");
const loadStart = load();

/** A pipeline on a FakeHost whose outbound reports the first enqueue after `arm()`. */
function timedPipeline(hub: EngineHub, name: string, lead: boolean) {
  const host = new FakeHost(name, "bench", false);
  let onFirst: (() => void) | null = null;
  const enqueue = host.outbound.enqueue.bind(host.outbound);
  host.outbound.enqueue = (id, pcm) => {
    onFirst?.();
    onFirst = null;
    enqueue(id, pcm);
  };
  const p: StreamingPipeline = hub.createPipeline(host, SessionOptions.parse({ mode: "say" }), {
    sayLeadPiece: lead,
  });
  return {
    host,
    p,
    /** ms from say() to the first audio queued; waits until the whole say is queued, then drops it. */
    async firstAudio(text: string): Promise<number> {
      const got = new Promise<number>((res) => {
        const t0 = performance.now();
        onFirst = () => res(performance.now() - t0);
      });
      const done = p.say(text);
      const ms = await got;
      await done;
      host.outbound.clear();
      return ms;
    },
  };
}

const rows: string[] = [];
for (const engine of engines) {
  const hub = await EngineHub.create({
    ...engineHubConfig(parseConfig({ TTS_ENGINE: engine, ASR_ENGINE: "ctc" })),
    initTimeoutMs: 600_000, // a loaded shared machine loads the workers slowly; this measures what comes after
  });
  const whole = timedPipeline(hub, `bench-${engine}-whole`, false);
  const lead = timedPipeline(hub, `bench-${engine}-lead`, true);
  try {
    for (const s of sentences.slice(0, 3)) {
      await whole.firstAudio(s);
      await lead.firstAudio(s);
    }
    const r = { whole: [] as number[], lead: [] as number[], job: [] as number[] };
    for (let k = 0; k < n; k++) {
      const i = 3 + k;
      const text = `${first(sentences[i % sentences.length])} ${
        first(sentences[(i + 1) % sentences.length])
      }`;
      // alternate the order so that neither mode always runs right after the other
      const order = k % 2 ? ["lead", "whole", "job"] as const : ["whole", "lead", "job"] as const;
      for (const m of order) {
        if (m === "job") {
          const t0 = performance.now();
          await hub.synthesize(chunkText(text)[0], { outRate: 24000 });
          r.job.push(performance.now() - t0);
        } else r[m].push(await (m === "lead" ? lead : whole).firstAudio(text));
      }
    }
    for (const m of ["whole", "lead", "job"] as const) {
      const what = m === "job"
        ? "TTS job first chunk"
        : `say first audio, ${m === "lead" ? "lead piece" : "whole"}`;
      rows.push(`| ${engine} | ${what} | ${q(r[m], 0.5).toFixed(1)} | ${q(r[m], 0.95).toFixed(1)} | ${n} |`);
    }
  } finally {
    await whole.p.close();
    await lead.p.close();
    whole.host.close();
    lead.host.close();
    await hub.close();
  }
}
console.log(`load average: start ${loadStart}; end ${load()}`);
console.log("| engine | measure | p50 ms | p95 ms | trials |\n|---|---|---|---|---|");
for (const r of rows) console.log(r);
