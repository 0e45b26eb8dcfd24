// The tiny test models in models/tiny-whisper and models/tiny-vits (built by models/tiny/*.py) load and run
// through Transformers.js with remote models disabled, and give deterministic, non-empty outputs.
import assert from "node:assert/strict";
import { env, pipeline } from "@huggingface/transformers";

const MODELS_DIR = new URL("../models/", import.meta.url).pathname;
const SR = 16000;

/** Point Transformers.js at models/ with remote models disabled; returns a function that restores env. */
function offline(): () => void {
  const saved = {
    allowRemoteModels: env.allowRemoteModels,
    allowLocalModels: env.allowLocalModels,
    localModelPath: env.localModelPath,
  };
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = MODELS_DIR;
  return () => Object.assign(env, saved);
}

function tone(seconds: number, amplitude: number, hz = 440): Float32Array {
  return new Float32Array(Math.round(seconds * SR)).map((_, i) =>
    amplitude * Math.sin((2 * Math.PI * hz * i) / SR)
  );
}

function rms(x: Float32Array): number {
  let s = 0;
  for (const v of x) s += v * v;
  return Math.sqrt(s / x.length);
}

type AsrOut = { text: string; chunks?: { timestamp: [number, number | null]; text: string }[] };

Deno.test("tiny-whisper: ASR pipeline runs offline, deterministic, non-empty", async () => {
  const restore = offline();
  const asr = await pipeline("automatic-speech-recognition", "tiny-whisper");
  try {
    const audio = tone(1.5, 0.3);
    const a = (await asr(audio, { language: "en", task: "transcribe" })) as AsrOut;
    const b = (await asr(audio, { language: "en", task: "transcribe" })) as AsrOut;
    assert.equal(a.text, " Hello, world.");
    assert.deepEqual(b, a);
    // without language/task (multilingual model: Transformers.js warns and defaults to English)
    assert.equal(((await asr(tone(1, 0.05, 220))) as AsrOut).text, " Hello, world.");
    // the output depends on the input: digital silence gives another fixed text
    const silent = (await asr(new Float32Array(SR), { language: "en" })) as AsrOut;
    assert.equal(silent.text, " Silence.");
    // generation options go through
    assert.equal(((await asr(audio, { language: "en", max_new_tokens: 2 })) as AsrOut).text, " Hello,");
    const ts = (await asr(audio, { language: "en", return_timestamps: true })) as AsrOut;
    assert.equal(ts.text, " Hello, world.");
    assert.deepEqual(ts.chunks, [{ timestamp: [0, 1], text: " Hello, world." }]);
  } finally {
    await asr.dispose();
    restore();
  }
});

Deno.test("tiny-vits: text-to-audio pipeline runs offline, deterministic, non-silent, grows with text", async () => {
  const restore = offline();
  const tts = await pipeline("text-to-audio", "tiny-vits");
  try {
    const short = await tts("Hello world");
    const again = await tts("Hello world");
    const long = await tts("Hello world, this is a longer sentence.");
    assert.ok(short.audio instanceof Float32Array);
    assert.equal(short.sampling_rate, 16000);
    // a blank before each of the 11 characters and one at the end, 512 samples per token
    assert.equal(short.audio.length, (2 * 11 + 1) * 512);
    assert.deepEqual(again.audio, short.audio);
    assert.ok(rms(short.audio) > 0.05, `rms ${rms(short.audio)}`);
    assert.ok(long.audio.length > short.audio.length);
    assert.ok(short.audio.every(Number.isFinite));
  } finally {
    await tts.dispose();
    restore();
  }
});

Deno.test("tiny models chain: tiny-vits audio transcribes with tiny-whisper", async () => {
  const restore = offline();
  const tts = await pipeline("text-to-audio", "tiny-vits");
  const asr = await pipeline("automatic-speech-recognition", "tiny-whisper");
  try {
    const { audio, sampling_rate } = await tts("Good morning");
    assert.equal(sampling_rate, SR);
    assert.equal(((await asr(audio, { language: "en" })) as AsrOut).text, " Hello, world.");
  } finally {
    await tts.dispose();
    await asr.dispose();
    restore();
  }
});

Deno.test("offline: a model folder that is not there fails instead of downloading", async () => {
  const restore = offline();
  try {
    await assert.rejects(pipeline("text-to-audio", "tiny-does-not-exist"), /local_files_only|not found/i);
  } finally {
    restore();
  }
});
