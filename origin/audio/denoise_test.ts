import assert from "node:assert/strict";
import { BatchingDenoiser } from "./denoise.ts";
import { type DenoiseJob, DenoiseStates } from "./denoise_states.ts";
import { loadRnnoise, RNNOISE_FRAME } from "./rnnoise.ts";
import { EngineHub } from "../pipeline/engine_hub.ts";
import { engineHubConfig } from "../engine_config.ts";
import { parseConfig } from "../../lib/config.ts";
import { concat, FakeHost, feed, silence } from "../pipeline/host_double.ts";
import { SessionOptions, type TranscriptEvent } from "../../protocol/session_messages.ts";
import { configureLogging } from "../../lib/log.ts";

configureLogging({ level: "error", sink: () => {} });

function noisy(frames: number, seed: number): Int16Array {
  const x = new Int16Array(frames * RNNOISE_FRAME);
  let s = seed;
  for (let i = 0; i < x.length; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    x[i] = ((s / 0x7fffffff) * 2 - 1) * 3000;
  }
  return x;
}

Deno.test("BatchingDenoiser: streams of one tick go in one job, in order; close frees worker states", async () => {
  const states = new DenoiseStates();
  const jobs: DenoiseJob[] = [];
  const d = new BatchingDenoiser((job) => {
    jobs.push(job);
    return states.run(job);
  });
  const a = d.open(), b = d.open();
  const fa = noisy(3, 1), fb = noisy(2, 2);
  const split = (x: Int16Array) =>
    Array.from({ length: x.length / RNNOISE_FRAME }, (_, i) => x.subarray(i * 480, (i + 1) * 480));
  const [ra, rb] = await Promise.all([a.process(split(fa)), b.process(split(fb))]);
  assert.equal(jobs.length, 1, "both streams in one job");
  assert.equal(ra.length, 3);
  assert.equal(rb.length, 2);
  // white noise is suppressed: less energy out than in
  const energy = (xs: Int16Array[]) => xs.reduce((s, x) => s + x.reduce((t, v) => t + v * v, 0), 0);
  assert.ok(energy(ra) < energy(split(fa)) / 4, "noise attenuated");
  assert.equal(states.open, 2);
  a.close();
  a.close(); // idempotent
  b.close();
  await d.idle();
  assert.equal(states.open, 0, "closed streams' RNNoise states freed");
  assert.equal(d.openStreams, 0);
  await assert.rejects(a.process(split(fa)), /closed/);
});

Deno.test("DenoiseStates: 300 streams opened and closed leave no state and no WASM heap growth", async () => {
  const m = await loadRnnoise();
  const states = new DenoiseStates();
  const d = new BatchingDenoiser((job) => states.run(job));
  const cycle = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const s = d.open();
      await s.process([noisy(1, i)]);
      s.close();
    }
    await d.idle();
  };
  await cycle(20); // warm-up: the heap reaches its working size
  const heap0 = m.HEAPF32.length;
  await cycle(300);
  assert.equal(states.open, 0);
  assert.equal(m.HEAPF32.length, heap0, "WASM heap did not grow");
  states.closeAll();
});

Deno.test({
  name: "pipeline with noise_suppression: transcript with session-time words; states freed on close",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const hub = await EngineHub.create({
      // espeak: the bundled recognizer is trained on espeak speech (not on flite, the default voice)
      ...engineHubConfig(
        parseConfig({ ASR_ENGINE: "ctc", ASR_MODEL: "parley-asr-en", TTS_ENGINE: "espeak" }),
      ),
      workers: 1,
    });
    let p: ReturnType<typeof hub.createPipeline> | undefined;
    try {
      const host = new FakeHost("s-ns");
      p = hub.createPipeline(host, SessionOptions.parse({ noise_suppression: true, partials: false }));
      const tts = await hub.synthesize("turn on the kitchen lights", { outRate: 48000 });
      const speech = tts.pcm as Int16Array;
      const base = await feed(p, host, concat(silence(500), speech, silence(900)), false, undefined, 10_000);
      await p.drain();
      const t0 = performance.now();
      let conf: TranscriptEvent | undefined;
      while (!conf && performance.now() - t0 < 30_000) {
        await new Promise((r) => setTimeout(r, 50));
        conf = host.events.find((e): e is TranscriptEvent =>
          e.type === "transcript" && e.status === "confirmed"
        );
      }
      assert.ok(conf, "confirmed transcript");
      assert.ok(conf.words && conf.words.length >= 3, JSON.stringify(conf));
      assert.equal(conf.words.map((w) => w.text).join(" "), conf.alternatives[0].text);
      assert.ok(typeof conf.confidence === "number");
      // session time: speech starts 500 ms after the first frame (timestamps from 10 000 ms)
      const first = conf.words[0].start_ms - base;
      assert.ok(first >= 350 && first <= 900, `first word at ${first} ms`);
      for (let i = 1; i < conf.words.length; i++) {
        assert.ok(conf.words[i].start_ms >= conf.words[i - 1].end_ms - 1);
      }
      assert.equal(hub.denoiseStats().streams, 1);
      assert.ok(hub.denoiseStats().workerStates >= 1);
      await p.close();
      host.close();
      // the freeing rides on the next batch; an idle hub sends it on its own
      const t1 = performance.now();
      while (hub.denoiseStats().workerStates > 0 && performance.now() - t1 < 10_000) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.deepEqual(hub.denoiseStats(), { streams: 0, workerStates: 0 });
    } finally {
      // the pipeline first: a failed assertion above must not leave it open under the hub's close
      await p?.close();
      await hub.close();
    }
  },
});
