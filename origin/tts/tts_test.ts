import assert from "node:assert/strict";
import { loadSynthesisEngine } from "./factory.ts";
import { splitSentences } from "./sentences.ts";
import { ttsConfig } from "../engine_config.ts";
import { parseConfig } from "../../lib/config.ts";
import { visemeOf } from "./visemes.ts";

Deno.test("splitSentences keeps offsets into the original text and splits long sentences", () => {
  const text = "Hello there.  How are you today? Fine!\nNo punctuation";
  const s = splitSentences(text);
  assert.deepEqual(s.map((x) => x.text), ["Hello there.", "How are you today?", "Fine!", "No punctuation"]);
  for (const x of s) assert.equal(text.slice(x.offset, x.offset + x.text.length), x.text);
  const long = Array(60).fill("word").join(" ") + ", " + Array(20).fill("more").join(" ") + ".";
  const parts = splitSentences(long, 120);
  assert.ok(parts.length >= 2 && parts.every((p) => p.text.length <= 120));
  assert.equal(parts.map((p) => p.text).join(" "), long);
});

Deno.test("visemes: vowels to a/i/u/e/o, bilabials closed, pauses rest", () => {
  assert.equal(visemeOf("ˈɑː"), "a");
  assert.equal(visemeOf("aɪ"), "a");
  assert.equal(visemeOf("iː"), "i");
  assert.equal(visemeOf("ɪ"), "i");
  assert.equal(visemeOf("uː"), "u");
  assert.equal(visemeOf("ɛ"), "e");
  assert.equal(visemeOf("ˈoʊ"), "o");
  assert.equal(visemeOf("m"), "closed");
  assert.equal(visemeOf("p"), "closed");
  assert.equal(visemeOf(""), "rest");
  assert.equal(visemeOf("s"), "rest");
});

Deno.test("espeak: PCM at 22050 Hz with word and phoneme timings inside the audio, voices listed", async () => {
  const e = await loadSynthesisEngine(ttsConfig(parseConfig({ TTS_ENGINE: "espeak" })));
  try {
    const text = "Hello world. Maybe we should eat apples.";
    const r = await e.synthesize(text);
    assert.equal(r.sampleRate, 22050);
    assert.ok(r.pcm instanceof Int16Array);
    assert.ok(r.durationMs > 1500 && r.durationMs < 5000, `duration ${r.durationMs}`);
    assert.equal(r.estimated, false);
    assert.deepEqual(r.words.map((w) => w.text), [
      "Hello",
      "world",
      "Maybe",
      "we",
      "should",
      "eat",
      "apples",
    ]);
    for (const w of r.words) {
      assert.equal(text.slice(w.char_start, w.char_end), w.text);
      assert.ok(w.start_ms >= 0 && w.start_ms + w.duration_ms <= r.durationMs + 1);
      assert.ok(w.duration_ms > 50, `${w.text} ${w.duration_ms}`);
    }
    for (let i = 1; i < r.words.length; i++) assert.ok(r.words[i].start_ms >= r.words[i - 1].start_ms);
    // the audio is actually there: energy inside "world" is well above the pause after "world."
    const rmsAt = (fromMs: number, toMs: number) => {
      const a = Math.floor((fromMs * 22050) / 1000), b = Math.floor((toMs * 22050) / 1000);
      let s = 0;
      for (let i = a; i < b; i++) s += (r.pcm[i] / 32768) ** 2;
      return Math.sqrt(s / Math.max(1, b - a));
    };
    const world = r.words[1];
    assert.ok(rmsAt(world.start_ms, world.start_ms + world.duration_ms) > 0.02);
    // phonemes: contiguous, visemes include closed lips for the m of "Maybe" and a vowel class
    assert.ok(r.phonemes.length > 15);
    const maybe = r.words[2];
    const mPh = r.phonemes.find((p) => p.start_ms >= maybe.start_ms - 5 && p.start_ms < maybe.start_ms + 80);
    assert.equal(mPh?.viseme, "closed", JSON.stringify(mPh));
    assert.ok(r.phonemes.some((p) => p.viseme === "a") && r.phonemes.some((p) => p.viseme === "i"));
    const voices = await e.listVoices();
    assert.ok(voices.length > 50 && voices.some((v) => v.id === "en-us"));
    // another voice works, unknown voice fails
    const de = await e.synthesize("Guten Tag.", "de");
    assert.ok(de.durationMs > 300);
    await assert.rejects(e.synthesize("x", "no-such-voice-zz"));
  } finally {
    await e.close();
  }
  await assert.rejects(e.synthesize("closed"), /closed/);
});

Deno.test("vits (tiny model): float PCM with estimated timings", async () => {
  const e = await loadSynthesisEngine({
    ...ttsConfig(parseConfig({ TTS_ENGINE: "vits" })),
    vitsModel: "tiny-vits",
  });
  try {
    const text = "Hello big world.";
    const r = await e.synthesize(text);
    assert.ok(r.pcm instanceof Float32Array && r.pcm.length > 0);
    assert.ok(r.sampleRate >= 8000);
    assert.equal(r.estimated, true);
    assert.deepEqual(r.words.map((w) => w.text), ["Hello", "big", "world"]);
    const last = r.words[r.words.length - 1];
    assert.ok(last.start_ms + last.duration_ms <= r.durationMs + 1);
    assert.ok(r.phonemes.some((p) => p.viseme === "closed")); // b of "big"
  } finally {
    await e.close();
  }
});
