import assert from "node:assert/strict";
import fc from "fast-check";
import { chunkSsml, parseSsml, SsmlError, toSafeSsml } from "./ssml.ts";

const err = (input: string): SsmlError => {
  try {
    parseSsml(input);
  } catch (e) {
    assert.ok(e instanceof SsmlError, `expected SsmlError, got ${e}`);
    return e;
  }
  assert.fail(`accepted: ${input}`);
};

Deno.test("ssml: the subset becomes text runs with rates and breaks", () => {
  const doc = parseSsml(
    `<speak version="1.0" xml:lang="en-US">Hello &amp; welcome.<break time="500ms"/>` +
      `<prosody rate="slow">Code <say-as interpret-as="characters">AB1</say-as>, pin ` +
      `<say-as interpret-as="digits">42</say-as>.</prosody><break strength="strong"/>` +
      `<sub alias="World Wide Web Consortium">W3C</sub> &#x263A;&#65;</speak>`,
  );
  assert.deepEqual(doc.segments, [
    { kind: "text", text: "Hello & welcome.", rate: 1 },
    { kind: "break", ms: 500 },
    { kind: "text", text: "Code A B 1 , pin 4 2 .", rate: 0.75 },
    { kind: "break", ms: 700 },
    { kind: "text", text: "World Wide Web Consortium ☺A", rate: 1 },
  ]);
  assert.equal(doc.text, "Hello & welcome. Code A B 1 , pin 4 2 . World Wide Web Consortium ☺A");
});

Deno.test("ssml: relative and nested rates multiply; out of range is an error", () => {
  const doc = parseSsml(`<speak><prosody rate="150%">a<prosody rate="-20%">b</prosody></prosody></speak>`);
  assert.deepEqual(doc.segments, [{ kind: "text", text: "a", rate: 1.5 }, {
    kind: "text",
    text: "b",
    rate: 1.2,
  }]);
  assert.match(err(`<speak><prosody rate="300%">a</prosody></speak>`).message, /outside/);
});

Deno.test("ssml: bad markup is an SsmlError with the position", () => {
  const cases: Array<[string, number, RegExp]> = [
    [`<speak>hi <b>x</b></speak>`, 10, /unsupported element <b>/],
    [`<speak>hi <break time="5ms" foo="1"/></speak>`, 10, /unsupported attribute foo/],
    [`<speak><prosody rate="fast">x</speak>`, 29, /does not close <prosody>/],
    [`<speak>x`, 0, /<speak> is not closed/],
    [`<speak><!-- c --></speak>`, 7, /comments/],
    [`<speak><![CDATA[x]]></speak>`, 7, /CDATA/],
    [`<!DOCTYPE speak><speak/>`, 0, /DOCTYPE/],
    [`<?xml version="1.0"?><speak/>`, 0, /processing instructions/],
    [`<speak><script>alert(1)</script></speak>`, 7, /unsupported element <script>/],
    [`<speak>a &nbsp; b</speak>`, 9, /unknown entity/],
    [`<speak>a & b</speak>`, 9, /bare "&"/],
    [`<speak>&#0;</speak>`, 7, /not allowed/],
    [`<speak><break time="11s"/></speak>`, 7, /break longer/],
    [`<speak>${"9".repeat(40)}</speak>`, 7, /more than 30 digits/],
    [`hello`, 0, /outside <speak>/],
    [`<speak><say-as interpret-as="date">x</say-as></speak>`, 7, /characters" or "digits/],
    [`<speak><sub alias="">x</sub></speak>`, 7, /non-empty alias/],
    [`<speak><say-as interpret-as="digits">12<break/></say-as></speak>`, 39, /not allowed inside <say-as>/],
  ];
  for (const [input, pos, re] of cases) {
    const e = err(input);
    assert.match(e.message, re, input);
    assert.equal(e.position, pos, `${input}: ${e.message}`);
  }
  assert.match(err(`<speak>${"<break/>".repeat(10_000)}</speak>`).message, /more than 200 breaks/);
  const deep = `<speak>${`<prosody rate="100%">`.repeat(5)}x${"</prosody>".repeat(5)}</speak>`;
  assert.match(err(deep).message, /nested deeper than 4/);
});

Deno.test("ssml: the regenerated document parses back to the same runs", () => {
  const doc = parseSsml(
    `<speak>a &lt;b&gt; "c" 'd'<break time="1.5s"/><prosody rate="x-fast">e</prosody></speak>`,
  );
  assert.deepEqual(parseSsml(toSafeSsml(doc)).segments, doc.segments);
});

Deno.test("ssml: chunks split at run boundaries, keep every run and break, respect the size", () => {
  const long = Array.from({ length: 40 }, (_, i) => `Sentence number ${i} is here.`).join(" ");
  const doc = parseSsml(`<speak>${long}<break time="300ms"/><prosody rate="slow">${long}</prosody></speak>`);
  const chunks = chunkSsml(doc, 200);
  assert.ok(chunks.length > 4);
  for (const c of chunks) {
    const chars = c.reduce((n, s) => n + (s.kind === "text" ? s.text.length : 0), 0);
    assert.ok(chars <= 200, `chunk of ${chars}`);
  }
  const flat = chunks.flat();
  assert.equal(flat.filter((s) => s.kind === "break").length, 1);
  const text = (rate: number) =>
    flat.flatMap((s) => s.kind === "text" && s.rate === rate ? [s.text] : []).join(" ");
  assert.equal(text(1), long);
  assert.equal(text(0.75), long);
});

Deno.test("ssml: 400 generated inputs give a valid document or an SsmlError, nothing else", () => {
  // half the cases are random soups of markup pieces (nearly always invalid), half are well-formed trees of
  // the subset with random text and random (often out-of-limit) values, so both paths are exercised
  const piece = fc.oneof(
    fc.constantFrom(
      "<speak>",
      "</speak>",
      "<break/>",
      '<break time="250ms"/>',
      '<break time="99999s"/>',
      '<break strength="weak">',
      "</break>",
      '<prosody rate="fast">',
      '<prosody rate="200%">',
      '<prosody rate="+90%">',
      '<prosody rate="x">',
      "</prosody>",
      '<say-as interpret-as="characters">',
      '<say-as interpret-as="digits">',
      "</say-as>",
      '<sub alias="x &amp; y">',
      "</sub>",
      "<script>",
      "</script>",
      "<!-- x -->",
      "<![CDATA[<b>]]>",
      "<!DOCTYPE x>",
      "<?pi?>",
      "&amp;",
      "&lt;",
      "&#65;",
      "&#x1F600;",
      "&#0;",
      "&#99999999;",
      "&bogus;",
      "&",
      "<",
      ">",
      '"',
      "'",
      "<speak/>",
      "<speak xml:lang='en-US'>",
      "<speak a=b>",
      "12345678901234567890123456789012345",
      "\u0000",
      "\uD800",
      "😀",
      " ",
      "\n",
    ),
    fc.string({ maxLength: 6 }),
    fc.string({ unit: "binary", maxLength: 4 }),
  );
  const soup = fc.tuple(fc.array(piece, { maxLength: 30 }), fc.boolean()).map(([parts, wrap]) =>
    wrap ? `<speak>${parts.join("")}</speak>` : parts.join("")
  );
  const words = fc.constantFrom(
    "hello",
    "a &amp; b",
    "x &lt; y",
    "&#233;t&#xE9;",
    "12",
    "9".repeat(31),
    "😀",
    "",
  );
  const tree: fc.Arbitrary<string> = fc.letrec<{ node: string }>((tie) => ({
    node: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      words,
      fc.constantFrom("100ms", "2s", "0.5s", "20s", "abc").map((t) => `<break time="${t}"/>`),
      fc.tuple(
        fc.constantFrom("slow", "fast", "150%", "-30%", "+50%", "5", "x-fast"),
        fc.array(tie("node"), { maxLength: 3 }),
      )
        .map(([r, kids]) => `<prosody rate="${r}">${kids.join(" ")}</prosody>`),
      fc.tuple(fc.constantFrom("characters", "digits"), fc.constantFrom("ABC", "123", "1 2", "a&amp;b"))
        .map(([how, t]) => `<say-as interpret-as="${how}">${t}</say-as>`),
      fc.constantFrom("W3C", "x").map((t) => `<sub alias="the ${t}">${t}</sub>`),
    ),
  })).node;
  const valid = fc.array(tree, { maxLength: 6 }).map((kids) => `<speak>${kids.join(" ")}</speak>`);
  let accepted = 0, rejected = 0;
  fc.assert(
    fc.property(fc.oneof(soup, valid), (input) => {
      try {
        const doc = parseSsml(input);
        accepted++;
        for (const s of doc.segments) {
          if (s.kind === "break") assert.ok(s.ms > 0 && s.ms <= 10_000);
          else assert.ok(s.text.length > 0 && s.rate >= 0.5 && s.rate <= 2 && s.text.trim() === s.text);
        }
        assert.deepEqual(parseSsml(toSafeSsml(doc)).segments, doc.segments);
        chunkSsml(doc, 50);
      } catch (e) {
        if (!(e instanceof SsmlError)) throw e;
        rejected++;
        assert.ok(e.position >= 0 && e.position <= input.length);
      }
    }),
    { numRuns: 400, seed: 18 },
  );
  console.log(`ssml generated cases: ${accepted} accepted, ${rejected} rejected with SsmlError`);
  assert.ok(accepted >= 40 && rejected >= 40, `accepted ${accepted}, rejected ${rejected}`);
});
