import assert from "node:assert/strict";
import { splitLead } from "./lead_split.ts";

const cut = (s: string) => {
  const r = splitLead(s);
  if (!r) return null;
  assert.equal(s.slice(r.lead.offset, r.lead.offset + r.lead.text.length), r.lead.text);
  assert.equal(s.slice(r.rest.offset, r.rest.offset + r.rest.text.length), r.rest.text);
  return [r.lead.text, r.rest.text, r.at];
};

Deno.test("lead split: at the first clause punctuation when it comes early", () => {
  assert.deepEqual(cut("Good morning, I'd like to book a table for two."), [
    "Good morning,",
    "I'd like to book a table for two.",
    "punctuation",
  ]);
  assert.deepEqual(cut("Well then; we will leave at noon tomorrow."), [
    "Well then;",
    "we will leave at noon tomorrow.",
    "punctuation",
  ]);
  // a comma too early (one word) or too late is not taken; the word cut is used instead
  assert.equal(cut("Yes, I would like to book a table for two people tonight.")![2], "word");
});

Deno.test("lead split: between words, before a function word, never after one", () => {
  assert.deepEqual(cut("The bus was late again because of the rain."), [
    "The bus was late again",
    "because of the rain.",
    "word",
  ]);
  const [lead] = cut("The train to the city leaves in ten minutes.")!;
  assert.ok(!/\b(to|the|a)$/i.test(lead as string), lead as string);
  for (
    const s of [
      "Could you please close the window before you leave?",
      "We watched a funny movie last night with friends.",
      "My sister is coming to visit us next weekend.",
    ]
  ) {
    const r = splitLead(s)!;
    assert.ok(r, s);
    assert.ok(r.lead.text.length >= 12 && r.lead.text.split(" ").length >= 2, s);
    assert.ok(r.rest.text.split(" ").length >= 2, s);
    assert.equal(`${r.lead.text} ${r.rest.text}`, s);
  }
});

Deno.test("lead split: short sentences and unsafe places are not cut", () => {
  assert.equal(splitLead("Hello there, friend."), null);
  assert.equal(splitLead("Meet at 5 on 3rd floor, O.K.? 42 99 100 7 8 9"), null);
  // numbers, abbreviations and hyphens stay with their neighbours
  const r = splitLead("Dr. Smith arrives at 5 pm with a well-known guest from the U.S.A. tonight.")!;
  for (const bad of ["Dr.", "5", "pm", "well-known", "U.S.A."]) {
    assert.ok(!r.lead.text.endsWith(bad) && !r.rest.text.startsWith(bad), `${r.lead.text} | ${r.rest.text}`);
  }
  // no whitespace (e.g. Chinese) → no cut
  assert.equal(splitLead("今天天气很好我们下午去公园散步然后回家吃晚饭好不好呢朋友们大家一起来"), null);
  // the rest must have two words and ten characters
  assert.equal(splitLead("Please remember everything, tomorrow!"), null);
});

Deno.test("lead split: offsets index the original text (leading spaces, several spaces)", () => {
  const s = "  The weather is nice enough   for a walk in the park.";
  const r = splitLead(s)!;
  assert.equal(r.lead.offset, 2);
  assert.equal(s.slice(r.rest.offset), "for a walk in the park.");
});
