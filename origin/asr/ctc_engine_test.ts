import assert from "node:assert/strict";
import { loadAsrEngine } from "./factory.ts";
import { asrConfig } from "../engine_config.ts";
import { parseConfig } from "../../lib/config.ts";
import { CtcEngine } from "./ctc_engine.ts";
import { readWav } from "../pipeline/wav.ts";
import { int16ToFloat } from "../../lib/audio/resampler.ts";

Deno.test({
  name: "ctc engine (bundled models/parley-asr-en): alternatives for espeak speech, empty-ish for silence",
  fn: async () => {
    const e = await loadAsrEngine(asrConfig(parseConfig({ ASR_ENGINE: "ctc", ASR_MODEL: "parley-asr-en" })));
    assert.ok(e instanceof CtcEngine);
    try {
      const x = int16ToFloat(
        readWav(new URL("../../tests/fixtures/speech/two_phrases_16k.wav", import.meta.url)).samples,
      );
      const r = await e.transcribe(x.subarray(Math.round(0.3 * 16000), Math.round(1.9 * 16000))); // "Hello there."
      assert.ok(r.alternatives.length >= 1);
      assert.ok(r.alternatives[0].text.length > 0, JSON.stringify(r));
      for (let i = 1; i < r.alternatives.length; i++) {
        assert.ok(r.alternatives[i].score <= r.alternatives[i - 1].score);
      }
      const quiet = await e.transcribe(new Float32Array(16000));
      assert.ok(quiet.alternatives[0].text.split(/\s+/).filter(Boolean).length <= 1, JSON.stringify(quiet));
    } finally {
      await e.dispose();
    }
    await assert.rejects(e.transcribe(new Float32Array(1600)), /disposed/);
  },
});
