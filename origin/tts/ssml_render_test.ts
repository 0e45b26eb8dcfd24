import assert from "node:assert/strict";
import { parseSsml } from "../../protocol/ssml.ts";
import { renderSsml } from "./ssml_render.ts";
import { FliteEngine } from "./flite/engine.ts";

Deno.test("renderSsml: runs at their rates, breaks as silence, char ranges index doc.text", async () => {
  const e = await FliteEngine.load({ defaultVoice: "slt" });
  try {
    const doc = parseSsml(
      `<speak>Hello &amp; welcome.<break time="800ms"/><prosody rate="200%">Now the fast part.</prosody>` +
        `<sub alias="World Wide Web">WWW</sub></speak>`,
    );
    const r = await renderSsml(e, doc);
    const plain = await e.synthesize("Hello & welcome.");
    assert.deepEqual(r.words.map((w) => w.text), [
      "Hello",
      "&",
      "welcome",
      "Now",
      "the",
      "fast",
      "part",
      "World",
      "Wide",
      "Web",
    ]);
    for (const w of r.words) assert.equal(doc.text.slice(w.char_start, w.char_end), w.text);
    const gap = r.words[3].start_ms - (r.words[2].start_ms + r.words[2].duration_ms);
    assert.ok(gap >= 800, `gap ${gap}`);
    // the break is silence in the audio
    const pcm = r.pcm as Int16Array;
    const a = Math.round(plain.durationMs * r.sampleRate / 1000);
    assert.ok(pcm.subarray(a, a + Math.round(0.8 * r.sampleRate)).every((x) => x === 0));
    const fast = await e.synthesize("Now the fast part.", undefined, { speed: 2 });
    const slow = await e.synthesize("Now the fast part.");
    assert.ok(fast.durationMs < slow.durationMs * 0.7);
    for (let i = 1; i < r.words.length; i++) assert.ok(r.words[i].start_ms >= r.words[i - 1].start_ms);
  } finally {
    await e.close();
  }
});
