import assert from "node:assert/strict";
import { type TranscribeLine, transcriptionWords } from "./openai.ts";

type Seg = Extract<TranscribeLine, { type: "segment" }>;
const seg = (id: number, words?: Seg["words"]): Seg => ({
  type: "segment",
  id,
  start_ms: id * 1000,
  end_ms: id * 1000 + 900,
  text: words?.map((w) => w.text).join(" ") ?? "x",
  score: 0,
  ...(words ? { words } : {}),
});

Deno.test("verbose_json words: every segment's aligned words in order, in seconds", () => {
  const words = transcriptionWords([
    seg(0, [{ text: "hello", start_ms: 120, end_ms: 480 }, { text: "there", start_ms: 500, end_ms: 880 }]),
    seg(1, [{ text: "again", start_ms: 1100, end_ms: 1650 }]),
  ]);
  assert.deepEqual(words, [
    { word: "hello", start: 0.12, end: 0.48 },
    { word: "there", start: 0.5, end: 0.88 },
    { word: "again", start: 1.1, end: 1.65 },
  ]);
});

Deno.test("verbose_json words: none invented when a segment has no alignment", () => {
  assert.equal(transcriptionWords([seg(0, [{ text: "a", start_ms: 0, end_ms: 100 }]), seg(1)]), null);
  assert.equal(transcriptionWords([seg(0)]), null);
  // No speech at all: an empty list is the truth, not a missing alignment.
  assert.deepEqual(transcriptionWords([]), []);
});
