/**
 * The bundled recognizer (models/parley-asr-en) transcribes held-out espeak-ng sentences (models/eval: sentences and
 * voices never used in training) through Transformers.js with remote models disabled.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { loadCtcRecognizer } from "../origin/asr/ctc_decoder.ts";
import { wordErrorRate as wer } from "../origin/asr/error_rate.ts";
import { readWav } from "../origin/pipeline/wav.ts";
import { EngineHub } from "../origin/pipeline/engine_hub.ts";
import { concat, FakeHost, feed, silence } from "../origin/pipeline/host_double.ts";
import { floatToInt16, int16ToFloat, resampleAll } from "../lib/audio/resampler.ts";
import { engineHubConfig } from "../origin/engine_config.ts";
import { parseConfig } from "../lib/config.ts";
import { SessionOptions, type TranscriptEvent } from "../protocol/session_messages.ts";
import { configureLogging } from "../lib/log.ts";
import { EspeakEngine } from "../origin/tts/espeak_engine.ts";

/** A held-out eval WAV: must be mono 16-bit 16 kHz (the model's input). */
function readWav16(path: string): Float32Array {
  const w = readWav(path);
  assert.equal(w.channels, 1, "mono");
  assert.equal(w.sampleRate, 16000, "16 kHz");
  return int16ToFloat(w.samples);
}

const MODEL_DIR = fileURLToPath(new URL("../models/parley-asr-en", import.meta.url));
const EVAL_DIR = fileURLToPath(new URL("../models/eval", import.meta.url));
/** The first five utterances of the held-out manifest (not hand-picked). */
const N = 5;

/** [file, voice, text] of the first n rows of the held-out manifest */
const firstHeldOut = (n: number) =>
  readFileSync(`${EVAL_DIR}/manifest.tsv`, "utf8").trim().split("\n").slice(1, 1 + n).map((l) =>
    l.split("\t")
  );

async function transcribeFirst(n: number) {
  const { env } = await import("@huggingface/transformers");
  const rec = await loadCtcRecognizer(MODEL_DIR);
  try {
    assert.equal(env.allowRemoteModels, false);
    const rows = firstHeldOut(n);
    assert.equal(rows.length, n);
    const out = [];
    for (const [file, , text] of rows) {
      const r = await rec.transcribe(readWav16(`${EVAL_DIR}/${file}`));
      out.push({ file, text, best: r.hypotheses[0].text });
    }
    return out;
  } finally {
    await rec.dispose();
  }
}

Deno.test({
  name:
    "bundled CTC model runs offline on held-out espeak sentences (regression bound: aggregate WER <= 15%)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const rows = await transcribeFirst(N);
    let errs = 0, words = 0;
    for (const r of rows) {
      assert.ok(r.best.length > 0, `${r.file}: empty transcript`);
      const n = r.text.split(" ").length;
      errs += wer(r.text, r.best) * n;
      words += n;
    }
    // measured: 2 errors / 37 words = 0.05 for the committed model; the previous one (1.56M parameters, 30 ms
    // frames) made 5 / 37 = 0.14 and its first stage 20 / 37 = 0.54
    assert.ok(errs / words <= 0.15, `aggregate WER ${(errs / words).toFixed(2)}`);
  },
});

/**
 * Sentences through the whole speech pipeline, as a session hears them: 48 kHz frames of 10 ms (the WebRTC sink's
 * format) with 0.9 s of silence after each, real Silero VAD segmentation, the bundled CTC engine in the inference
 * worker. Returns the confirmed transcripts, in order.
 */
async function confirmedThroughPipeline(sentences48k: Int16Array[]): Promise<string[]> {
  configureLogging({ level: "error", sink: () => {} });
  // the VAD ends a segment after 0.4 s of silence
  const pcm = concat(silence(900), ...sentences48k.flatMap((s) => [s, silence(900)]));

  const hub = await EngineHub.create({
    ...engineHubConfig(parseConfig({ ASR_ENGINE: "ctc", TTS_ENGINE: "espeak" })),
    workers: 1,
  });
  const host = new FakeHost("s-bundled");
  const p = hub.createPipeline(host, SessionOptions.parse({ mode: "transcribe" }));
  try {
    await feed(p, host, pcm, false);
    await p.drain();
    const confirmed = () =>
      host.events.filter((e): e is TranscriptEvent => e.type === "transcript" && e.status === "confirmed");
    const t0 = performance.now();
    while (confirmed().length < sentences48k.length && performance.now() - t0 < 30_000) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const got = confirmed().map((e) => e.alternatives[0].text);
    assert.equal(
      got.length,
      sentences48k.length,
      `one confirmed transcript per sentence: ${JSON.stringify(got)}`,
    );
    return got;
  } finally {
    await p.close();
    host.close();
    await hub.close();
  }
}

/**
 * Held-out sentences spoken by held-out voices (dialects and variants never used in training), through the
 * pipeline: a regression bound on the aggregate. Per sentence the committed model is within WER 25% on 100 of
 * the 120 (EVAL.md lists the others); of these five, "the hem fell shortly below her knees" (en-us-nyc, which
 * drops the r of "her") ends in "hones", 2 errors in 7 words.
 */
Deno.test({
  name: "bundled CTC model through the speech pipeline, held-out sentences and voices: aggregate WER <= 15%",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const rows = firstHeldOut(N);
    const got = await confirmedThroughPipeline(
      rows.map(([file]) => floatToInt16(resampleAll(readWav(`${EVAL_DIR}/${file}`).samples, 16000, 48000))),
    );
    let errs = 0, words = 0;
    rows.forEach(([, , text], i) => {
      errs += wer(text, got[i]) * text.split(" ").length;
      words += text.split(" ").length;
    });
    assert.ok(errs / words <= 0.15, `aggregate WER ${(errs / words).toFixed(2)}: ${JSON.stringify(got)}`);
  },
});

/**
 * The bar, WER <= 25% on each sentence, for held-out sentences in the voice Parley itself speaks: the
 * synthesis engine of a session (espeak-ng compiled to WASM, voice en-us) says the first five held-out sentences,
 * and the pipeline transcribes them. en-us is a training dialect, but this espeak-ng build and its audio path (22.05
 * kHz, no trailing silence, resampled to 48 kHz) were never seen in training. Over all 120 held-out sentences this
 * voice scores WER 7.1%, 108 within 25% (measured with bench-like code, not in this test).
 */
Deno.test({
  name:
    "bundled CTC model through the speech pipeline, held-out sentences in Parley's own voice: WER <= 25% each",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const rows = firstHeldOut(N);
    const tts = await EspeakEngine.load("en-us");
    const audio: Int16Array[] = [];
    try {
      for (const [, , text] of rows) {
        const s = await tts.synthesize(text);
        audio.push(floatToInt16(resampleAll(s.pcm, s.sampleRate, 48000)));
      }
    } finally {
      await tts.close();
    }
    const got = await confirmedThroughPipeline(audio);
    rows.forEach(([file, , text], i) => {
      const w = wer(text, got[i]);
      assert.ok(w <= 0.25, `${file} text in en-us: "${text}" -> "${got[i]}" WER ${w.toFixed(2)}`);
    });
  },
});
