import assert from "node:assert/strict";
import { chunkEnd, chunkText, cleanText, countChars } from "./tts_text.ts";

const words = (s: string) => s.split(/\s+/).filter(Boolean);

Deno.test("chunker: sentences, ≤ max, never splits a word, keeps every word in order", () => {
  const sentence = (i: number) =>
    `Sentence number ${i} talks about ${"remarkably ".repeat(i % 7)}interesting things.`;
  const text = Array.from({ length: 200 }, (_, i) => sentence(i)).join(" ") +
    " Word " + "word ".repeat(400).trim() + ".";
  const chunks = chunkText(text);
  for (const c of chunks) assert.ok(c.length <= 300, `chunk of ${c.length}`);
  assert.ok(chunks[0].length <= 60, "first chunk is short");
  assert.deepEqual(words(chunks.join(" ")), words(text), "no word lost, split or reordered");
  // the run of 400 "word"s (one 2000-char sentence) was cut at word boundaries
  assert.ok(chunks.filter((c) => c.startsWith("word") || c.startsWith("Word")).length >= 7);
});

Deno.test("chunker: tiny sentences merge; short text is one chunk", () => {
  assert.deepEqual(chunkText("Yes. No. OK."), ["Yes. No. OK."]);
  assert.deepEqual(chunkText("  Hello   there!  "), ["Hello there!"]);
  assert.deepEqual(chunkText(" \n\t "), []);
  assert.deepEqual(chunkText("\u0000\u0007\u001b"), []);
});

Deno.test("chunker: Unicode — emoji, RTL, CJK without spaces, mixed scripts, control chars, lone surrogates", () => {
  const family = "👨‍👩‍👧‍👦";
  const text = `Hello ${family}! שלום עולם, مرحبا بالعالم. ` + "日本語の文章です".repeat(60) +
    `。Mixed Ελληνικά и русский.\u0000\u0008 Bell\u0007 here. Bad \uD800 surrogate.`;
  const chunks = chunkText(text);
  const joined = chunks.join(" ");
  assert.ok(joined.includes(family), "ZWJ emoji sequence kept whole");
  assert.ok(joined.includes("שלום עולם") && joined.includes("مرحبا بالعالم"));
  // deno-lint-ignore no-control-regex -- stripping control characters is the point
  assert.ok(!/[\u0000-\u0008\u000B-\u001F\u007F]/.test(joined), "control chars gone");
  assert.ok(
    !/[\uD800-\uDFFF](?![\uDC00-\uDFFF])/.test(joined.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, "")),
  );
  for (const c of chunks) {
    assert.ok(c.length <= 300);
    assert.equal(c, c.trim());
    assert.doesNotThrow(() => encodeURIComponent(c), "well-formed UTF-16");
  }
  // the 480-char Japanese run was cut between words, not inside a surrogate pair or grapheme
  assert.ok(chunks.length >= 3);
});

Deno.test("chunker: an over-long token is cut between grapheme clusters", () => {
  const emoji = "😀".repeat(400); // 800 UTF-16 units, no word boundary inside
  const chunks = chunkText(emoji);
  assert.equal(chunks.join(""), emoji);
  for (const c of chunks) assert.ok(c.length <= 300 && !/^[\uDC00-\uDFFF]|[\uD800-\uDBFF]$/.test(c));
});

Deno.test("cleanText / countChars", () => {
  assert.equal(cleanText("a\r\nb\u2028c\u0001d"), "a\nb\nc d");
  assert.equal(countChars("😀ab"), 3);
  assert.equal(cleanText("e\u0301"), "é");
});

Deno.test("chunker: the first sentence's lead piece is the first chunk, alone; the rest merges on", () => {
  // the 50-character speech of the benchmarks: a word cut before an article
  assert.deepEqual(chunkText("The quick brown fox jumps over the lazy dog today."), [
    "The quick brown fox jumps over",
    "the lazy dog today.",
  ]);
  // a clause mark is preferred; the rest of the sentence and the next short sentence share a chunk
  assert.deepEqual(chunkText("Good morning everyone, the meeting starts at nine. Be on time."), [
    "Good morning everyone,",
    "the meeting starts at nine. Be on time.",
  ]);
  // short sentences are not cut; lead: false keeps the old rule (SSML chunks use it)
  assert.deepEqual(chunkText("Hello there, friend."), ["Hello there, friend."]);
  assert.deepEqual(chunkText("The quick brown fox jumps over the lazy dog today.", { lead: false }), [
    "The quick brown fox jumps over the lazy dog today.",
  ]);
  // no safe cut (numbers, abbreviations): the first chunk is capped as before
  const dense = "Call 555-0100 or 555-0199 at 5pm E.S.T. re: ticket #4821-B/7 (urgent) ASAP today.";
  const c = chunkText(dense);
  assert.ok(c[0].length <= 60);
  assert.deepEqual(words(c.join(" ")), words(dense));
});

Deno.test("chunkEnd: a sentence, a clause cut, a word cut", () => {
  assert.equal(chunkEnd("over the lazy dog today."), "sentence");
  assert.equal(chunkEnd('He said "stop!"'), "sentence");
  assert.equal(chunkEnd("Really?)"), "sentence");
  assert.equal(chunkEnd("日本語の文章です。"), "sentence");
  assert.equal(chunkEnd("Good morning everyone,"), "clause");
  assert.equal(chunkEnd("first of all;  "), "clause");
  assert.equal(chunkEnd("The quick brown fox jumps"), "word");
  assert.equal(chunkEnd(""), "sentence");
});
