import assert from "node:assert/strict";
import { wordErrorRate } from "../error_rate.ts";
import { SphinxDecoder } from "./sphinx_decoder.ts";
import { probeSphinx } from "./sphinx_probe.ts";
import {
  DEFAULT_SPHINX_CONFIG,
  detectSphinx,
  SPHINX_SEARCH_PRESETS,
  sphinxConfigFrom,
} from "./sphinx_detect.ts";
import {
  SphinxClosedError,
  SphinxDecodeError,
  SphinxInitError,
  SphinxUnavailableError,
} from "./sphinx_errors.ts";
import {
  assertThrowsKind,
  feed,
  fliteSpeech,
  librivoxUtterances,
  readWav16k,
  requireSphinx,
} from "./sphinx_testdata.ts";

requireSphinx();

// One decoder for the decoding tests: building one is a model load.
let shared: SphinxDecoder | null = null;
const decoder = () => (shared ??= SphinxDecoder.open(DEFAULT_SPHINX_CONFIG));

function assertSaneWords(
  words: { text: string; start_ms: number; end_ms: number; confidence: number }[],
  ms: number,
) {
  let prevEnd = 0;
  for (const w of words) {
    assert.ok(
      w.text && !/[<>\[\]()]/.test(w.text),
      `word "${w.text}" is a filler or has a pronunciation marker`,
    );
    assert.ok(
      w.start_ms >= prevEnd,
      `"${w.text}" starts ${w.start_ms} before the previous word ends ${prevEnd}`,
    );
    assert.ok(w.end_ms > w.start_ms, `"${w.text}" has no duration`);
    assert.ok(w.end_ms <= ms + 20, `"${w.text}" ends ${w.end_ms} after the audio ${ms}`);
    assert.ok(w.confidence >= 0 && w.confidence <= 1, `confidence ${w.confidence}`);
    prevEnd = w.end_ms;
  }
}

Deno.test("sphinx decodes human read speech (pocketsphinx-testdata LibriVox), streaming with partials", () => {
  const d = decoder();
  const utts = librivoxUtterances();
  assert.deepEqual(utts.length, 5);
  let errors = 0, words = 0;
  for (const u of utts.filter((x) => /0880|0930/.test(x.id))) {
    const pcm = readWav16k(u.path);
    d.start();
    const partials = feed(d, pcm, 100);
    const r = d.finish();
    const nonEmpty = partials.filter((p) => p.text);
    assert.ok(nonEmpty.length >= 5, `only ${nonEmpty.length} non-empty partials`);
    // the hypothesis grows while audio arrives: the first partial comes well before the end
    assert.ok(nonEmpty[0].atMs < (pcm.length / 16) * 0.5, `first partial at ${nonEmpty[0].atMs} ms`);
    assert.deepEqual(new Set(nonEmpty.map((p) => p.text)).size > 2, true, "partials never changed");
    assert.deepEqual(d.partial().text, r.text, "after finish, partial() is the final text");
    assertSaneWords(r.words, pcm.length / 16);
    assert.deepEqual(r.text, r.words.map((w) => w.text).join(" "));
    assert.ok(r.confidence !== null && r.confidence > 0 && r.confidence <= 1);
    errors += wordErrorRate(u.ref, r.text) * u.ref.split(" ").length;
    words += u.ref.split(" ").length;
  }
  assert.ok(errors / words <= 0.35, `WER ${(errors / words).toFixed(2)} on human speech`);
});

Deno.test("sphinx decodes flite synthetic speech; words are timed and ordered", async () => {
  const d = decoder();
  const text = "please turn on the kitchen lights and open the window";
  const pcm = await fliteSpeech(text, "rms");
  d.start();
  feed(d, pcm, 20);
  const r = d.finish();
  assertSaneWords(r.words, pcm.length / 16);
  const wer = wordErrorRate(text, r.text);
  assert.ok(wer <= 0.3, `WER ${wer} for "${r.text}"`);
  assert.ok(r.words.length >= 7);
  assert.deepEqual(Math.round(r.audioMs), Math.round(pcm.length / 16));
});

Deno.test("sphinx: reset abandons an utterance; the next one is decoded alone", () => {
  const d = decoder();
  const [a, b] = librivoxUtterances().filter((x) => /0880|0930/.test(x.id)).map((u) => readWav16k(u.path));
  d.start();
  d.process(a.subarray(0, 16000));
  assert.ok(d.inUtterance);
  d.reset();
  assert.ok(!d.inUtterance);
  assert.deepEqual(d.partial().text, "");
  d.start();
  feed(d, b);
  const r = d.finish();
  // nothing of the abandoned "he was not…" leaks into "he might even have been made amiable himself"
  assert.ok(r.words[0].start_ms < 1000, `first word at ${r.words[0].start_ms}`);
  assert.ok(!r.text.includes("was not"), r.text);
  assert.ok(r.text.startsWith("he might even have been"), r.text);
});

Deno.test("sphinx: state errors are clear; silence gives an empty result", () => {
  const d = decoder();
  assertThrowsKind(() => d.process(new Int16Array(160)), SphinxDecodeError, "before start");
  assertThrowsKind(() => d.finish(), SphinxDecodeError, "without start");
  d.start();
  assertThrowsKind(() => d.start(), SphinxDecodeError, "already started");
  d.process(new Int16Array(16000));
  const r = d.finish();
  assert.deepEqual(r.words, []);
  assert.deepEqual(r.confidence, null);
});

Deno.test("sphinx: close frees the decoder, is idempotent, and use after close throws SphinxClosedError", () => {
  const d = decoder();
  shared = null;
  d.start();
  d.process(new Int16Array(1600));
  d.close(); // mid-utterance
  d.close();
  assert.ok(d.closed);
  for (
    const use of [() => d.start(), () => d.process(new Int16Array(10)), () => d.partial(), () => d.finish()]
  ) {
    assertThrowsKind(use, SphinxClosedError, "sphinx decoder is closed");
  }
  assertThrowsKind(() => d.reset(), SphinxClosedError);
});

Deno.test("sphinx: search presets, SPHINX_ARGS laid over them, bad values refused", () => {
  assert.deepEqual(sphinxConfigFrom({}).extraArgs, [...SPHINX_SEARCH_PRESETS.live]);
  assert.deepEqual(DEFAULT_SPHINX_CONFIG.extraArgs, [...SPHINX_SEARCH_PRESETS.live]);
  assert.deepEqual(sphinxConfigFrom({ SPHINX_SEARCH: "full" }).extraArgs, []);
  assert.deepEqual(
    sphinxConfigFrom({ SPHINX_ARGS: "-maxhmmpf 10000 -pl_window 5" }).extraArgs,
    ["-fwdflat", "no", "-maxhmmpf", "10000", "-maxwpf", "5", "-pl_window", "5"],
  );
  assert.throws(() => sphinxConfigFrom({ SPHINX_SEARCH: "fast" }), RangeError);
  assert.throws(() => sphinxConfigFrom({ SPHINX_ARGS: "-beam" }), RangeError);
  // An override of a preset option builds (PocketSphinx refuses an option given twice); an unknown one does not.
  SphinxDecoder.open(sphinxConfigFrom({ SPHINX_ARGS: "-maxhmmpf 10000" })).close();
  assertThrowsKind(
    () => SphinxDecoder.open(sphinxConfigFrom({ SPHINX_ARGS: "-no_such_option 1" })),
    SphinxInitError,
    "rejected",
  );
});

Deno.test("sphinx: missing files give the one-line install message", () => {
  const missing = sphinxConfigFrom({ SPHINX_LIB_DIR: "/nonexistent", SPHINX_MODEL_DIR: "" });
  const a = detectSphinx(missing);
  assert.deepEqual(a.available, false);
  assert.deepEqual(a.missingPackages, ["libpocketsphinx3"]);
  assert.ok(a.message.includes("apt-get install libpocketsphinx3 pocketsphinx-en-us"), a.message);
  assert.ok(!a.message.includes("\n"));
  assertThrowsKind(() => SphinxDecoder.open(missing), SphinxUnavailableError, "apt-get install");
  const noModel = detectSphinx({ ...DEFAULT_SPHINX_CONFIG, modelDir: "/nonexistent/en-us" });
  assert.ok(noModel.message.includes("acoustic model /nonexistent/en-us"), noModel.message);
});

Deno.test("sphinx: a broken model dir is a SphinxInitError from the probe; this process survives", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    for (const f of ["mdef", "means", "variances", "transition_matrices", "feat.params"]) {
      Deno.writeTextFileSync(`${dir}/${f}`, "not a model\n");
    }
    const broken = { ...DEFAULT_SPHINX_CONFIG, modelDir: dir };
    assert.deepEqual(detectSphinx(broken).available, true); // detection only looks for files
    await assert.rejects(
      probeSphinx(broken),
      (e: Error) => e instanceof SphinxInitError && e.message.includes(dir),
    );
    const badArg = { ...DEFAULT_SPHINX_CONFIG, extraArgs: ["-no_such_option", "1"] };
    assertThrowsKind(() => SphinxDecoder.open(badArg), SphinxInitError, "rejected");
    await probeSphinx(DEFAULT_SPHINX_CONFIG);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
