/**
 * The streaming strategy with the real sphinx engine in the speech workers (PocketSphinx from Debian; a missing
 * package fails with the install line, never a skip): real VAD, human LibriVox recordings from
 * pocketsphinx-testdata, a worker crashed mid-stream.
 */
import assert from "node:assert/strict";
import { EngineHub } from "./engine_hub.ts";
import type { InferencePool } from "../inference/pool.ts";
import { concat, FakeHost, feed, silence } from "./host_double.ts";
import { floatToInt16, int16ToFloat, resampleAll } from "../../lib/audio/resampler.ts";
import { engineHubConfig } from "../engine_config.ts";
import { parseConfig } from "../../lib/config.ts";
import type { ErrorEvent, ServerEvent, TranscriptEvent } from "../../protocol/session_messages.ts";
import { SessionOptions } from "../../protocol/session_messages.ts";
import { configureLogging } from "../../lib/log.ts";
import { librivoxUtterances, readWav16k, requireSphinx } from "../asr/sphinx/sphinx_testdata.ts";

configureLogging({ level: "error", sink: () => {} });
const opts = { sanitizeOps: false, sanitizeResources: false };

requireSphinx();
let hubP: Promise<EngineHub> | null = null;
function hub(): Promise<EngineHub> {
  hubP ??= EngineHub.create({
    ...engineHubConfig(parseConfig({ ASR_ENGINE: "sphinx" })),
    workers: 2,
    jobTimeoutMs: 120_000,
  });
  return hubP;
}

const utterances = librivoxUtterances();
function human48k(i: number): Int16Array {
  return floatToInt16(resampleAll(int16ToFloat(readWav16k(utterances[i].path)), 16000, 48000));
}
const words = (s: string) => s.toLowerCase().split(/\s+/).filter(Boolean);
/** Reference words found in the hypothesis (order-free recall: a loose check that it heard the speech). */
function recall(hyp: string, ref: string): number {
  const h = new Set(words(hyp));
  const r = words(ref);
  return r.filter((w) => h.has(w)).length / r.length;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
const transcripts = (ev: ServerEvent[]) => ev.filter((e): e is TranscriptEvent => e.type === "transcript");
const confirmedOf = (ev: ServerEvent[]) => transcripts(ev).filter((e) => e.status === "confirmed");

Deno.test({
  name: "sphinx streaming: human speech → partials from the running hypothesis, then the confirmed words",
  ...opts,
  fn: async () => {
    const h = await hub();
    const host = new FakeHost("s-sphinx-1");
    const p = h.createPipeline(host, SessionOptions.parse({ mode: "transcribe" }));
    try {
      await feed(p, host, concat(silence(300), human48k(0), silence(900)), true);
      await p.drain();
      await waitFor(() => confirmedOf(host.events).length >= 1, 60_000, "a confirmed transcript");
      const text = confirmedOf(host.events).map((e) => e.alternatives[0].text).join(" ");
      assert.ok(recall(text, utterances[0].ref) >= 0.5, `"${text}" vs "${utterances[0].ref}"`);
      const partials = transcripts(host.events).filter((e) => e.status === "partial");
      // at least one partial before the confirmed (more when the machine keeps up: stale ones are dropped)
      assert.ok(partials.length >= 1, `partials: ${partials.length}`);
      assert.ok(!host.events.some((e) => e.type === "error"), JSON.stringify(host.events));
    } finally {
      await p.close();
    }
  },
});

Deno.test({
  name:
    "sphinx streaming: the stream's worker dies mid-utterance → error event, the session keeps recognizing",
  ...opts,
  fn: async () => {
    const h = await hub();
    const pool = (h as unknown as { speechPool: InferencePool }).speechPool;
    const host = new FakeHost("s-sphinx-kill");
    const p = h.createPipeline(host, SessionOptions.parse({ mode: "transcribe" }));
    try {
      const speech = human48k(1);
      const half = Math.floor(speech.length / 2 / 480) * 480;
      await feed(p, host, concat(silence(300), speech.subarray(0, half)), true);
      // the worker holding this session's stream (the one pin the pool handed out for it)
      const slots = (pool as unknown as { slots: Array<{ index: number; generation: number; pins: number }> })
        .slots;
      const slot = slots.find((s) => s.pins > 0);
      assert.ok(slot, "a worker holds the stream");
      await pool.submit({ kind: "crash" }, { worker: { index: slot.index, generation: slot.generation } })
        .catch(() => {});
      await feed(p, host, concat(speech.subarray(half), silence(900)), true);
      await waitFor(() => host.events.some((e) => e.type === "error"), 30_000, "an error event");
      const err = host.events.find((e): e is ErrorEvent => e.type === "error")!;
      assert.equal(err.code, "recognizer_failed");
      // the next utterance is recognized on a new stream
      const before = confirmedOf(host.events).length;
      await feed(p, host, concat(human48k(2), silence(900)), true);
      await p.drain();
      await waitFor(() => confirmedOf(host.events).length > before, 60_000, "a confirmed after the crash");
      const last = confirmedOf(host.events).at(-1)!.alternatives[0].text;
      assert.ok(recall(last, utterances[2].ref) >= 0.5, `"${last}" vs "${utterances[2].ref}"`);
      assert.ok(h.ready().ready, "origin engines still ready");
    } finally {
      await p.close();
    }
  },
});

Deno.test({
  name: "sphinx streaming: closing sessions frees their streams (decoders back to the worker's pool)",
  ...opts,
  fn: async () => {
    const h = await hub();
    const pool = (h as unknown as { speechPool: InferencePool }).speechPool;
    const slots = () =>
      (pool as unknown as { slots: Array<{ pins: number }> }).slots.reduce((n, s) => n + s.pins, 0);
    const pins0 = slots();
    const pipes = Array.from(
      { length: 4 },
      (_, i) => h.createPipeline(new FakeHost(`s-close-${i}`), SessionOptions.parse({ mode: "transcribe" })),
    );
    await sleep(200);
    assert.ok(slots() >= pins0 + 4, "each session holds a stream");
    await Promise.all(pipes.map((x) => x.close()));
    // released once each stream's open (a decoder built in its worker) has finished
    await waitFor(() => slots() === pins0, 60_000, "streams released");
  },
});

Deno.test({ name: "sphinx streaming: hub close", ...opts, fn: async () => await (await hub()).close() });
