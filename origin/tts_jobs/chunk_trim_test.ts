import assert from "node:assert/strict";
import { chunkTrim } from "./chunk_trim.ts";
import { chunkText } from "../../protocol/tts_text.ts";
import { JOIN_PAUSE_MS, START_PAUSE_MS } from "../tts/trim_edges.ts";

const trims = (text: string) => {
  const chunks = chunkText(text);
  return chunks.map((t, idx) =>
    chunkTrim({
      idx,
      text: t,
      prevText: idx ? chunks[idx - 1] : null,
      chunksTotal: chunks.length,
      ssml: false,
    })
  );
};

Deno.test("chunkTrim: a lead cut between words is joined tightly; the sentence's end keeps its pause", () => {
  assert.deepEqual(trims("The quick brown fox jumps over the lazy dog today. And then it slept."), [
    { headMs: START_PAUSE_MS, tailMs: JOIN_PAUSE_MS.word },
    { headMs: JOIN_PAUSE_MS.word },
  ]);
});

Deno.test("chunkTrim: a clause cut keeps a phrase break; whole sentences are untouched", () => {
  assert.deepEqual(trims("Good morning everyone, the meeting starts at nine."), [
    { headMs: START_PAUSE_MS, tailMs: JOIN_PAUSE_MS.clause },
    { headMs: JOIN_PAUSE_MS.clause },
  ]);
  const long = Array.from({ length: 12 }, (_, i) => `This is sentence number ${i} of a long text.`).join(" ");
  const t = trims(long);
  assert.deepEqual(t[0], { headMs: START_PAUSE_MS, tailMs: JOIN_PAUSE_MS.word });
  assert.deepEqual(t[1], { headMs: JOIN_PAUSE_MS.word });
  for (const x of t.slice(2)) assert.equal(x, undefined);
});

Deno.test("chunkTrim: the last chunk keeps its tail; SSML is left alone", () => {
  assert.deepEqual(
    chunkTrim({ idx: 1, text: "and never finished", prevText: "It began", chunksTotal: 2, ssml: false }),
    { headMs: JOIN_PAUSE_MS.word },
  );
  assert.equal(
    chunkTrim({ idx: 0, text: "<speak>x</speak>", prevText: null, chunksTotal: 1, ssml: true }),
    undefined,
  );
});
