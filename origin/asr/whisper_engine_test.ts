import assert from "node:assert/strict";
import { loadAsrEngine } from "./factory.ts";
import { isJunkTranscript, makesUpPhrases } from "./junk_filter.ts";
import { asrConfig } from "../engine_config.ts";
import { parseConfig } from "../../lib/config.ts";
import { WhisperEngine } from "./whisper_engine.ts";
import { int16ToFloat } from "../../lib/audio/resampler.ts";
import { readWav } from "../pipeline/wav.ts";

Deno.test("whisper (tiny model, offline): fast log-mel equals the reference extractor; transcribes; dispose", async () => {
  const e = await loadAsrEngine(asrConfig(parseConfig({ ASR_ENGINE: "whisper", ASR_MODEL: "tiny-whisper" })));
  assert.ok(e instanceof WhisperEngine);
  try {
    // deno-lint-ignore no-explicit-any
    const fe = (e as any).pipe.processor.feature_extractor;
    const x = int16ToFloat(
      readWav(new URL("../../tests/fixtures/speech/two_phrases_16k.wav", import.meta.url)).samples,
    );
    for (const audio of [x, x.subarray(0, 12345), new Float32Array(800)]) {
      const fast = (await fe._call(audio)).input_features;
      const ref = (await fe.__reference(audio)).input_features;
      assert.deepEqual(fast.dims, ref.dims);
      let maxDiff = 0;
      for (let i = 0; i < ref.data.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(fast.data[i] - ref.data[i]));
      }
      assert.ok(maxDiff < 1e-4, `max diff ${maxDiff}`);
    }
    const r = await e.transcribe(x);
    assert.equal(r.alternatives.length, 1);
    assert.equal(typeof r.alternatives[0].text, "string");
    assert.equal(r.confidence, null);
    assert.ok(r.inferenceMs > 0);
  } finally {
    await e.dispose();
  }
  await assert.rejects(e.transcribe(new Float32Array(16000)), /disposed/);
});

Deno.test("junk filter: empty, punctuation, bracketed, classic hallucinations, loops", () => {
  for (
    const t of [
      "",
      "  ",
      "...",
      "[Music]",
      "(silence)",
      "Thank you.",
      "you",
      "the the the the the the the the the",
    ]
  ) {
    assert.equal(isJunkTranscript(t), true, t);
  }
  for (const t of ["hello there", "thank you for calling", "How are you today?"]) {
    assert.equal(isJunkTranscript(t), false, t);
  }
  // engines that do not make these phrases up keep them: the person said them
  for (const t of ["Thank you.", "you", "Bye!"]) {
    assert.equal(isJunkTranscript(t, { phrases: false }), false, t);
  }
  for (const t of ["", "...", "[Music]", "the the the the the the the the the"]) {
    assert.equal(isJunkTranscript(t, { phrases: false }), true, t);
  }
  assert.deepEqual(
    ["whisper", "moonshine", "ctc", "sphinx"].map(makesUpPhrases),
    [true, false, false, false],
  );
});
