/**
 * The Speaker's lead piece with the real flite engine (resampled to 48 kHz like the inference worker does): the
 * first sentence of a say that starts in silence becomes a short lead utterance and the rest, synthesized one
 * after the other; telops stay exact for their own audio and the pieces join with a phrase-break pause.
 */
import assert from "node:assert/strict";
import { Speaker, type SynthesisEngines } from "./speaker.ts";
import { FakeHost } from "./host_double.ts";
import { FliteEngine } from "../tts/flite/engine.ts";
import { renderSsml } from "../tts/ssml_render.ts";
import { floatToInt16, resampleAll } from "../../lib/audio/resampler.ts";
import { log } from "../../lib/log.ts";
import type { TelopEvent, UtteranceEvent } from "../../protocol/session_messages.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** The real engine behind the pool's interface, recording each job's text and when it was submitted/done. */
function engines(e: FliteEngine) {
  const jobs: Array<{ text: string; submitted: number; done: number; speed?: number }> = [];
  const engines: SynthesisEngines = {
    async synthesize(text, voice, _owner, o = {}) {
      const job = { text, submitted: performance.now(), done: Infinity, speed: o.speed };
      jobs.push(job);
      await new Promise((r) => setTimeout(r, 0));
      const v = voice?.replace(/^flite:/, "");
      const r = o.ssml
        ? await renderSsml(e, o.ssml, { voice: v, speed: o.speed })
        : await e.synthesize(text, v, { speed: o.speed });
      job.done = performance.now();
      const pcm = floatToInt16(resampleAll(r.pcm, r.sampleRate, 48000, { zerosPerSide: 8 }));
      return { ...r, pcm, sampleRate: 48000 };
    },
    cancel() {},
  };
  return { engines, jobs };
}

function speaker(host: FakeHost, en: SynthesisEngines, leadPiece = true) {
  return new Speaker({
    host,
    engines: en,
    owner: "t",
    voice: () => "flite:rms",
    speed: () => undefined,
    maxChars: 5000,
    leadPiece,
    name: "speaker test",
    log,
  });
}

const rmsOf = (pcm: Int16Array, from: number, to: number) => {
  let s = 0;
  for (let i = from; i < to; i++) s += pcm[i] * pcm[i];
  return Math.sqrt(s / Math.max(1, to - from));
};
const concat = (xs: Int16Array[]) => {
  const out = new Int16Array(xs.reduce((s, x) => s + x.length, 0));
  let o = 0;
  for (const x of xs) {
    out.set(x, o);
    o += x.length;
  }
  return out;
};

Deno.test({
  name:
    "speaker lead piece: lead and rest are two exact utterances, joined by a phrase break, rest after lead",
  ...opts,
  fn: async () => {
    const e = await FliteEngine.load();
    const host = new FakeHost("s-lead", "t", false);
    const { engines: en, jobs } = engines(e);
    const sp = speaker(host, en);
    try {
      const text = "Good morning, I'd like to book a table for two. See you soon.";
      await sp.say(text);
      assert.deepEqual(jobs.map((j) => j.text), [
        "Good morning,",
        "I'd like to book a table for two.",
        "See you soon.",
      ]);
      assert.ok(jobs[1].submitted >= jobs[0].done, "the rest is synthesized after the lead");
      // play everything by hand, 10 ms at a time
      while (host.outbound.queuedMs() > 0) host.outbound.tick(480);
      const telops = host.events.filter((x): x is TelopEvent => x.type === "telop");
      assert.deepEqual(telops.map((t) => t.utterance_id), ["u1.1", "u1.2", "u1.3"]);
      assert.deepEqual(telops.map((t) => t.text), jobs.map((j) => j.text));
      const audio = concat(host.outbound.played);
      let at = 0; // ms of played audio before each utterance
      const joins: number[] = [];
      for (const [k, t] of telops.entries()) {
        for (const w of t.words) {
          assert.equal(t.text.slice(w.char_start, w.char_end), w.text);
          assert.ok(w.start_ms >= 0 && w.start_ms + w.duration_ms <= t.duration_ms + 1, JSON.stringify(w));
          // exact: each word's span in the played audio holds sound
          const a = (at + w.start_ms) * 48, b = (at + w.start_ms + w.duration_ms) * 48;
          assert.ok(rmsOf(audio, a, b) > 200, `"${w.text}" of ${t.utterance_id} is silent`);
        }
        let p = 0;
        for (const ph of t.phonemes) {
          assert.equal(ph.start_ms, p, `${t.utterance_id} phonemes tile the audio`);
          p += ph.duration_ms;
        }
        if (k === 0) assert.ok(t.words[0].start_ms <= 61, `say starts after ${t.words[0].start_ms} ms`);
        if (k) {
          const prev = telops[k - 1];
          const last = prev.words.at(-1)!;
          joins.push(prev.duration_ms - (last.start_ms + last.duration_ms) + t.words[0].start_ms);
        }
        at += t.duration_ms;
      }
      // the comma join ≈ the engine's phrase break (60 + 60 ms kept); the sentence end keeps its own pause
      assert.ok(joins[0] >= 110 && joins[0] <= 130, `comma join ${joins[0]} ms`);
      assert.ok(joins[1] > 200, `sentence join ${joins[1]} ms`);
      assert.ok(Math.abs(audio.length / 48 - at) < 11, `played ${audio.length / 48} ms vs telops ${at}`);
      const finished = host.events.filter((x): x is UtteranceEvent =>
        x.type === "utterance" && x.phase === "finished"
      );
      assert.equal(finished.length, 3);
    } finally {
      sp.close();
      host.close();
      await e.close();
    }
  },
});

Deno.test({
  name: "speaker lead piece: only from silence; off by config; speed and SSML pass through the cut",
  ...opts,
  fn: async () => {
    const e = await FliteEngine.load();
    const host = new FakeHost("s-lead2", "t", false);
    const { engines: en, jobs } = engines(e);
    const sp = speaker(host, en);
    const off = speaker(new FakeHost("s-off", "t", false), engines(e).engines, false);
    const offJobs: string[] = [];
    try {
      // two says back to back: only the first starts in silence
      const a = sp.say("The bus was late again because of the rain.", { speed: 1.5 });
      const b = sp.say("The meeting has been moved to Thursday afternoon.");
      await Promise.all([a, b]);
      assert.deepEqual(jobs.map((j) => j.text), [
        "The bus was late again",
        "because of the rain.",
        "The meeting has been moved to Thursday afternoon.",
      ]);
      assert.deepEqual(jobs.map((j) => j.speed), [1.5, 1.5, undefined]);
      assert.ok(sp.interrupt());
      jobs.length = 0;
      // SSML: the first text run is cut; the break and the second run stay with the rest
      await sp.say(
        '<speak><prosody rate="slow">My sister is coming to visit us next weekend</prosody><break time="300ms"/>Great.</speak>',
        { ssml: true },
      );
      assert.deepEqual(jobs.map((j) => j.text), ["My sister is coming", "to visit us next weekend Great."]);
      while (host.outbound.queuedMs() > 0) host.outbound.tick(480);
      const telops = host.events.filter((x): x is TelopEvent => x.type === "telop").slice(-2);
      assert.deepEqual(telops.map((t) => t.words.map((w) => w.text).join(" ")), [
        "My sister is coming",
        "to visit us next weekend Great",
      ]);
      // the 300 ms break is still there between "weekend" and "Great"
      const w = telops[1].words;
      const gap = w.at(-1)!.start_ms - (w.at(-2)!.start_ms + w.at(-2)!.duration_ms);
      assert.ok(gap >= 300, `break ${gap} ms`);
      // off: the sentence is synthesized whole
      const offEngines = off as unknown as { init: { engines: SynthesisEngines } };
      const inner = offEngines.init.engines;
      offEngines.init.engines = {
        synthesize: (t, v, o, x) => (offJobs.push(t), inner.synthesize(t, v, o, x)),
        cancel: () => {},
      };
      await off.say("The bus was late again because of the rain.");
      assert.deepEqual(offJobs, ["The bus was late again because of the rain."]);
    } finally {
      sp.close();
      off.close();
      host.close();
      await e.close();
    }
  },
});

Deno.test({
  name:
    "speaker lead piece: not cut when synthesis is too slow for the rest to be ready before the lead has played",
  ...opts,
  fn: async () => {
    const e = await FliteEngine.load();
    const host = new FakeHost("s-slow", "t", false);
    const { engines: fast, jobs } = engines(e);
    // a machine so loaded that synthesis takes 100 ms per character of text (test double around the real engine)
    const slow: SynthesisEngines = {
      synthesize: async (t, v, o, x) => {
        await new Promise((r) => setTimeout(r, 100 * t.length));
        return fast.synthesize(t, v, o, x);
      },
      cancel: () => {},
    };
    const sp = speaker(host, slow);
    try {
      await sp.say("The bus was late again because of the rain.");
      assert.equal(jobs.length, 2, "no pace known yet: cut");
      assert.ok(sp.interrupt());
      jobs.length = 0;
      await sp.say("The meeting has been moved to Thursday afternoon.");
      assert.deepEqual(jobs.map((j) => j.text), ["The meeting has been moved to Thursday afternoon."]);
    } finally {
      sp.close();
      host.close();
      await e.close();
    }
  },
});
