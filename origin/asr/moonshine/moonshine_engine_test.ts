/**
 * The Moonshine engine on real human speech (pocketsphinx-testdata's LibriVox recordings, with the package's
 * transcripts), on silence and noise, on too-short input, with a broken model folder, and its native memory:
 * onnxruntime sessions freed by `dispose()`.
 */
import assert from "node:assert/strict";
import { loadBundledMoonshine, moonshineConfidence, moonshineText } from "./moonshine_engine.ts";
import { MoonshineModel } from "./moonshine_model.ts";
import { MoonshineModelError } from "./moonshine_errors.ts";
import { fliteSpeech, librivoxUtterances, readWav16k } from "../sphinx/sphinx_testdata.ts";
import { int16ToFloat } from "../../../lib/audio/resampler.ts";
import { editDistance } from "../error_rate.ts";
import { ClosedError } from "../../../lib/closed_error.ts";

const MODELS = new URL("../../../models", import.meta.url).pathname;
const load = loadBundledMoonshine;
const words = (s: string) => s.toLowerCase().replace(/[^a-z' ]+/g, " ").split(/\s+/).filter(Boolean);

Deno.test("moonshine: human read speech (LibriVox, pocketsphinx-testdata) at WER <= 15 %", async () => {
  const e = await load();
  try {
    let errs = 0, n = 0;
    const lines: string[] = [];
    for (const u of librivoxUtterances()) {
      const r = await e.transcribe(int16ToFloat(readWav16k(u.path)));
      const ref = words(u.ref), hyp = words(r.alternatives[0].text);
      errs += editDistance(ref, hyp);
      n += ref.length;
      lines.push(`${u.id}: ${r.alternatives[0].text} (confidence ${r.confidence?.toFixed(2)})`);
      assert.ok(r.confidence !== null && r.confidence > 0 && r.confidence <= 1, lines.join("\n"));
      assert.equal(r.words, undefined, "Moonshine has no timestamps: no word timings are made up");
    }
    assert.ok(errs / n <= 0.15, `WER ${(100 * errs / n).toFixed(1)} %\n${lines.join("\n")}`);
  } finally {
    await e.dispose();
  }
});

Deno.test("moonshine: silence and white noise give no words; input shorter than the encoder needs is padded", async () => {
  const e = await load();
  try {
    assert.equal((await e.transcribe(new Float32Array(16000))).alternatives[0].text, "");
    let seed = 7;
    const noise = new Float32Array(24000).map(() => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return (seed / 2 ** 31 - 0.5) * 0.2;
    });
    assert.equal((await e.transcribe(noise)).alternatives[0].text, "");
    for (const n of [0, 1, 100, 1599]) {
      const r = await e.transcribe(new Float32Array(n));
      assert.equal(typeof r.alternatives[0].text, "string");
    }
  } finally {
    await e.dispose();
  }
});

Deno.test("moonshine: text and confidence helpers", () => {
  // ids outside the printable vocabulary (BOS/EOS/UNK, the model's extra ids) are dropped, not thrown on
  assert.equal(moonshineText([1, 2, 0, 40000]), "");
  assert.equal(
    moonshineConfidence({ tokens: [5], logProbs: [Math.log(0.5), Math.log(0.5)], ended: true }),
    0.5,
  );
  assert.equal(moonshineConfidence({ tokens: [5, 5], logProbs: [0, 0], ended: false }), 0);
});

Deno.test("moonshine: a broken model folder fails with MoonshineModelError naming what is missing", async () => {
  const empty = await Deno.makeTempDir();
  await assert.rejects(MoonshineModel.load(empty), (e: unknown) => {
    assert.ok(e instanceof MoonshineModelError);
    assert.match(
      (e as Error).message,
      new RegExp(`${empty}.*encoder_model\\.onnx, decoder_model_merged\\.onnx`),
    );
    return true;
  });
  // two ONNX graphs that are not a Moonshine pair: the decoder has no key/value cache inputs
  const wrong = await Deno.makeTempDir();
  const ctc = `${MODELS}/parley-asr-en/onnx/model.onnx`;
  await Deno.copyFile(ctc, `${wrong}/encoder_model.onnx`);
  await Deno.copyFile(ctc, `${wrong}/decoder_model_merged.onnx`);
  await assert.rejects(MoonshineModel.load(wrong), MoonshineModelError);
  await Deno.remove(empty, { recursive: true });
  await Deno.remove(wrong, { recursive: true });
});

Deno.test("moonshine: dispose is idempotent, use after it is refused, and 15 load/dispose cycles free the sessions", async () => {
  const e = await load();
  await e.dispose();
  await e.dispose();
  await assert.rejects(e.transcribe(new Float32Array(16000)), ClosedError);

  const rssMb = () => Deno.memoryUsage().rss / 2 ** 20;
  const cycle = async () => {
    const x = await load();
    await x.transcribe(new Float32Array(16000));
    await x.dispose();
  };
  for (let i = 0; i < 3; i++) await cycle(); // allocator warm-up
  const before = rssMb();
  for (let i = 0; i < 15; i++) await cycle();
  const growth = rssMb() - before;
  // each load maps ~28 MB of weights and builds its graphs (~60 MB resident): 15 unreleased loads would add ~900
  assert.ok(growth < 150, `RSS grew ${growth.toFixed(0)} MB over 15 cycles`);
});

Deno.test("moonshine: dispose during a decode waits for it; the decode finishes, later ones are refused; metrics count it", async () => {
  const { registry } = await import("../../../lib/metrics.ts");
  const decodes = () => registry.counter("parley_moonshine_decodes_total", "").get({ outcome: "ended" });
  const loaded = () => registry.gauge("parley_moonshine_models_loaded", "").get();
  const e = await load();
  const before = decodes(), alive = loaded();
  const [u] = librivoxUtterances();
  const running = e.transcribe(int16ToFloat(readWav16k(u.path)));
  const closing = e.dispose();
  const r = await running;
  await closing;
  assert.match(r.alternatives[0].text, /dashwood/i);
  assert.equal(decodes(), before + 1);
  assert.equal(loaded(), alive - 1);
  await assert.rejects(e.transcribe(new Float32Array(16000)), ClosedError);
});

Deno.test("moonshine: a word shorter than half a second ends with the end token (the token bound has a floor)", async () => {
  const e = await load();
  try {
    const r = await e.transcribe(int16ToFloat(await fliteSpeech("Bye.", "slt")));
    assert.match(r.alternatives[0].text, /^by/i);
    // three tokens and the end token: a bound of 6 per second on 0.5 s (3) stopped it before the end token
    assert.ok((r.confidence ?? 0) > 0.3, `confidence ${r.confidence}`);
  } finally {
    await e.dispose();
  }
});

Deno.test("moonshine: weights folded to float at load decode the same tokens and log-probabilities as the int8 graph", async () => {
  const dir = `${MODELS}/moonshine-tiny-en`;
  const folded = await MoonshineModel.load(dir);
  const int8 = await MoonshineModel.load(dir, { foldWeights: false });
  try {
    const sentences = [["Please call the office before noon.", "rms"], ["Turn left at the bridge.", "slt"]];
    for (const [text, voice] of sentences) {
      const pcm = int16ToFloat(await fliteSpeech(text, voice));
      const a = await folded.decode(pcm), b = await int8.decode(pcm);
      assert.ok(a.tokens.length > 3, JSON.stringify(a));
      assert.deepEqual(a.tokens, b.tokens);
      assert.equal(a.ended, b.ended);
      for (const [i, lp] of a.logProbs.entries()) {
        assert.ok(Math.abs(lp - b.logProbs[i]) < 1e-3, `${lp} ${b.logProbs[i]}`);
      }
    }
  } finally {
    await folded.dispose();
    await int8.dispose();
  }
});
