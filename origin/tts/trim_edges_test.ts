import assert from "node:assert/strict";
import { trimEdges } from "./trim_edges.ts";
import type { SynthPhoneme, SynthWord } from "./engine.ts";

/** 1 s at 16 kHz: silence, a "word" of noise from 200 to 700 ms, silence. */
function result() {
  const pcm = new Int16Array(16000);
  for (let i = 200 * 16; i < 700 * 16; i++) pcm[i] = i % 2 ? 3000 : -3000;
  const words: SynthWord[] = [
    { text: "hi", start_ms: 200, duration_ms: 200, char_start: 0, char_end: 2 },
    { text: "you", start_ms: 400, duration_ms: 300, char_start: 3, char_end: 6 },
  ];
  const phonemes: SynthPhoneme[] = [
    { phoneme: "pau", start_ms: 0, duration_ms: 200, viseme: "rest" },
    { phoneme: "hh", start_ms: 200, duration_ms: 100, viseme: "e" },
    { phoneme: "ay", start_ms: 300, duration_ms: 100, viseme: "a" },
    { phoneme: "y", start_ms: 400, duration_ms: 150, viseme: "e" },
    { phoneme: "uw", start_ms: 550, duration_ms: 150, viseme: "u" },
    { phoneme: "pau", start_ms: 700, duration_ms: 300, viseme: "rest" },
  ];
  return { pcm, sampleRate: 16000, durationMs: 1000, words, phonemes, estimated: false };
}

Deno.test("trimEdges: keeps the asked pause on each side; times move with the audio", () => {
  const r = trimEdges(result(), { headMs: 50, tailMs: 20 });
  assert.equal(r.pcm.length, (50 + 500 + 20) * 16);
  assert.equal(r.durationMs, 570);
  assert.deepEqual(r.words.map((w) => w.start_ms), [50, 250]);
  assert.deepEqual(r.phonemes.map((p) => [p.phoneme, p.start_ms, p.duration_ms]), [
    ["pau", 0, 50],
    ["hh", 50, 100],
    ["ay", 150, 100],
    ["y", 250, 150],
    ["uw", 400, 150],
    ["pau", 550, 20],
  ]);
  // the word's samples are the original ones (exact), and the cut edges fade to silence
  assert.equal(r.pcm[50 * 16 + 5], result().pcm[200 * 16 + 5]);
  assert.equal(r.pcm[0], 0);
  assert.equal(r.pcm.at(-1), 0);
});

Deno.test("trimEdges: one side only; nothing to cut; estimated timings or no timings are left alone", () => {
  const head = trimEdges(result(), { headMs: 60 });
  assert.equal(head.durationMs, 860);
  assert.equal(head.words[0].start_ms, 60);
  const tail = trimEdges(result(), { tailMs: 100 });
  assert.equal(tail.durationMs, 800);
  assert.equal(tail.words[0].start_ms, 200);
  const same = result();
  assert.equal(trimEdges(same, { headMs: 500, tailMs: 900 }), same);
  const est = { ...result(), estimated: true };
  assert.equal(trimEdges(est, { headMs: 0 }), est);
  const none = { ...result(), words: [], phonemes: [] };
  assert.equal(trimEdges(none, { headMs: 0 }), none);
});

Deno.test("trimEdges: without words the phones other than pauses give the edges", () => {
  const whole = result();
  const withWords = trimEdges(whole, { headMs: 50, tailMs: 20 });
  const noWords = trimEdges({ ...result(), words: [] }, { headMs: 50, tailMs: 20 });
  assert.deepEqual(noWords.pcm, withWords.pcm);
  assert.deepEqual(noWords.phonemes, withWords.phonemes);
  // only pauses: nothing known to trim to
  const silent = {
    ...result(),
    words: [],
    phonemes: [{ phoneme: "pau", start_ms: 0, duration_ms: 1000, viseme: "rest" as const }],
  };
  assert.equal(trimEdges(silent, { headMs: 10 }), silent);
});
