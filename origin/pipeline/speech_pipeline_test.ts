/**
 * End-to-end pipeline tests by feeding PCM (no WebRTC): real Silero VAD, real Whisper (the tiny model the repo
 * builds, models/tiny-whisper), real espeak synthesis, all through the worker pools of one EngineHub.
 */
import assert from "node:assert/strict";
import { EngineHub } from "./engine_hub.ts";
import { InferencePool } from "../inference/pool.ts";
import { concat, FakeHost, feed, silence } from "./host_double.ts";
import { readWav } from "./wav.ts";
import { floatToInt16, resampleAll } from "../../lib/audio/resampler.ts";
import { engineHubConfig } from "../engine_config.ts";
import { parseConfig } from "../../lib/config.ts";
import type {
  ServerEvent,
  TelopEvent,
  TranscriptEvent,
  UtteranceEvent,
} from "../../protocol/session_messages.ts";
import { SessionOptions } from "../../protocol/session_messages.ts";
import { configureLogging } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";

configureLogging({ level: "error", sink: () => {} });

const opts = { sanitizeOps: false, sanitizeResources: false };
const fixture = (name: string) => new URL(`../../tests/fixtures/speech/${name}`, import.meta.url);

let hubP: Promise<EngineHub> | null = null;
function hub(): Promise<EngineHub> {
  hubP ??= EngineHub.create({
    ...engineHubConfig(
      parseConfig({ ASR_ENGINE: "whisper", ASR_MODEL: "tiny-whisper", TTS_ENGINE: "espeak" }),
    ),
    workers: 1,
  });
  return hubP;
}

/** 48 kHz Int16 of a fixture (16 kHz fixtures are upsampled, as the peer would send). */
function load48k(name: string): Int16Array {
  const w = readWav(fixture(name));
  return w.sampleRate === 48000 ? w.samples : floatToInt16(resampleAll(w.samples, w.sampleRate, 48000));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const transcripts = (ev: ServerEvent[]) => ev.filter((e): e is TranscriptEvent => e.type === "transcript");

Deno.test({
  name: "echo mode: two phrases → partials then confirmed in seq order, spoken back with telop timings",
  ...opts,
  fn: async () => {
    const h = await hub();
    const host = new FakeHost("s-echo");
    const p = h.createPipeline(host, SessionOptions.parse({ mode: "echo", barge_in: false }));
    const used = () => registry.counter("parley_asr_speculative_total", "").get({ outcome: "used" });
    const used0 = used();
    try {
      const base = await feed(p, host, concat(load48k("two_phrases_16k.wav"), silence(600)), true);
      await p.drain();
      await waitFor(
        () => transcripts(host.events).filter((e) => e.status === "confirmed").length >= 2,
        10000,
        "2 confirmed",
      );
      const tr = transcripts(host.events);
      const confirmed = tr.filter((e) => e.status === "confirmed");
      assert.deepEqual(confirmed.map((e) => e.segment_id), [1, 2]);
      // voiced parts of the fixture (Silero on the 16 kHz file): 0.54–1.31 s and 2.50–3.42 s
      const rel = confirmed.map((c) => [c.start_ms - base, c.end_ms - base]);
      assert.ok(Math.abs(rel[0][0] - 544) < 100 && Math.abs(rel[0][1] - 1312) < 100, JSON.stringify(rel));
      assert.ok(Math.abs(rel[1][0] - 2496) < 100 && Math.abs(rel[1][1] - 3424) < 100, JSON.stringify(rel));
      for (const c of confirmed) {
        assert.ok(c.alternatives[0].text.length > 0);
        assert.equal(c.stable_text, c.alternatives[0].text);
        assert.equal(c.unstable_text, "");
        assert.ok(c.latency_ms >= 0 && c.latency_ms < 5000);
      }
      // seq strictly increasing by 1, partials of a segment come before its confirmed, stable text only grows
      host.events.forEach((e, i) => assert.equal(e.seq, i + 1));
      // the final decodes were started in the silence window and used (no extra decode after the end)
      assert.ok(used() - used0 >= 1, "speculative final decode used");
      for (const seg of [1, 2]) {
        const parts = tr.filter((e) => e.segment_id === seg && e.status === "partial");
        const conf = confirmed.find((e) => e.segment_id === seg)!;
        for (let i = 0; i < parts.length; i++) {
          assert.ok(parts[i].seq < conf.seq);
          assert.equal(parts[i].stable_text + parts[i].unstable_text, parts[i].alternatives[0].text);
          if (i) assert.ok(parts[i].stable_text.startsWith(parts[i - 1].stable_text));
        }
      }
      // echo: each confirmed line is spoken back; telop per utterance at playout, timings inside the audio
      await waitFor(
        () => host.events.filter((e) => e.type === "utterance" && e.phase === "finished").length >= 2,
        15000,
        "echo playback",
      );
      const telops = host.events.filter((e): e is TelopEvent => e.type === "telop");
      assert.ok(telops.length >= 2);
      for (const t of telops) {
        assert.equal(t.estimated, false);
        assert.ok(t.words.length > 0 && t.phonemes.length > 0);
        for (const w of t.words) {
          assert.ok(w.start_ms >= 0 && w.start_ms + w.duration_ms <= t.duration_ms + 1);
        }
        const started = host.events.find((e) =>
          e.type === "utterance" && e.phase === "started" && e.utterance_id === t.utterance_id
        );
        assert.ok(started && started.seq < t.seq);
      }
      const finished = host.events.filter((e): e is UtteranceEvent =>
        e.type === "utterance" && e.phase === "finished"
      );
      for (const f of finished) {
        const t = telops.find((x) => x.utterance_id === f.utterance_id)!;
        assert.ok(Math.abs(f.played_ms - t.duration_ms) < 25, `played ${f.played_ms} vs ${t.duration_ms}`);
      }
      const playedMs = host.outbound.played.length * 10;
      assert.ok(playedMs >= telops.reduce((s, t) => s + t.duration_ms, 0) - 20);
    } finally {
      await p.close();
      host.close();
    }
  },
});

Deno.test({
  name: "partials while speech continues: before the confirmed, same segment, stable text only grows",
  ...opts,
  fn: async () => {
    const h = await hub();
    const host = new FakeHost("s-partial");
    const p = h.createPipeline(host, SessionOptions.parse({}));
    try {
      const tts = await h.synthesize(
        "Partial results should appear while this sentence is still being spoken.",
        {
          outRate: 48000,
        },
      );
      await feed(p, host, concat(silence(200), tts.pcm as Int16Array, silence(700)), true);
      await p.drain();
      await waitFor(() => transcripts(host.events).some((e) => e.status === "confirmed"), 10000, "confirmed");
      const tr = transcripts(host.events);
      const conf = tr.filter((e) => e.status === "confirmed");
      assert.equal(conf.length, 1);
      const parts = tr.filter((e) => e.status === "partial");
      assert.ok(parts.length >= 1, "at least one partial");
      for (let i = 0; i < parts.length; i++) {
        assert.equal(parts[i].segment_id, conf[0].segment_id);
        assert.ok(parts[i].seq < conf[0].seq);
        assert.equal(parts[i].stable_text + parts[i].unstable_text, parts[i].alternatives[0].text);
        assert.ok(parts[i].end_ms <= conf[0].end_ms + 200 && parts[i].start_ms === conf[0].start_ms);
        if (i) {
          assert.ok(parts[i].stable_text.startsWith(parts[i - 1].stable_text));
          assert.ok(parts[i].end_ms > parts[i - 1].end_ms);
        }
      }
    } finally {
      await p.close();
      host.close();
    }
  },
});

Deno.test({
  name: "silence and noise: no segment, no decode, no event",
  ...opts,
  fn: async () => {
    const h = await hub();
    const host = new FakeHost("s-quiet");
    const p = h.createPipeline(host, SessionOptions.parse({}));
    const asrJobs = () =>
      registry.counter("parley_inference_jobs_total", "").get({ pool: "speech", kind: "asr", outcome: "ok" });
    const before = asrJobs();
    try {
      let s = 7;
      const hiss = new Int16Array(48000 * 2).map(() => {
        s = (s * 1103515245 + 12345) & 0x7fffffff;
        return ((s / 0x7fffffff) * 2 - 1) * 1500;
      });
      await feed(p, host, concat(silence(1500), hiss, silence(500)), false);
      await p.drain();
      await sleep(300);
      assert.equal(p.position16k >= 16000 * 3.9, true);
      assert.equal(host.events.length, 0, JSON.stringify(host.events));
      assert.equal(asrJobs(), before);
    } finally {
      await p.close();
      host.close();
    }
  },
});

Deno.test({
  name: "long speech is cut at max segment length (forced), at a quiet point, and both parts are confirmed",
  ...opts,
  fn: async () => {
    const h = await hub();
    const host = new FakeHost("s-long");
    const p = h.createPipeline(host, SessionOptions.parse({ partials: false }), {
      segmenter: {
        ...(await import("./segmenter.ts")).DEFAULT_SEGMENTER_CONFIG,
        maxSegmentMs: 3000,
        cutSearchMs: 1500,
      },
    });
    try {
      const tts = await h.synthesize(
        "This sentence is long and keeps going, with words and words, and even more words after that.",
        { outRate: 48000 },
      );
      assert.ok(tts.durationMs > 4500, `tts ${tts.durationMs}`);
      await feed(p, host, concat(silence(300), tts.pcm as Int16Array, silence(800)), false);
      await p.drain();
      await waitFor(() => transcripts(host.events).length >= 2, 10000, "confirmed parts");
      const tr = transcripts(host.events);
      assert.ok(tr.every((e) => e.status === "confirmed"), "partials disabled");
      assert.ok(tr.length >= 2, `segments ${tr.length}`);
      // the first part ends before 3 s + pre-roll and the next starts where it ended
      assert.ok(tr[0].end_ms - tr[0].start_ms <= 3000 + 50, JSON.stringify(tr[0]));
      assert.equal(tr[1].start_ms, tr[0].end_ms);
      const forced = registry.counter("parley_vad_segments_total", "").get({ outcome: "forced" });
      assert.ok(forced >= 1);
    } finally {
      await p.close();
      host.close();
    }
  },
});

Deno.test({
  name:
    "say: sentence by sentence with telop; barge-in stops playback within 200 ms and reports what was played",
  ...opts,
  fn: async () => {
    const h = await hub();
    const host = new FakeHost("s-say");
    const p = h.createPipeline(host, SessionOptions.parse({ mode: "say", barge_in: true }));
    try {
      const text =
        "Hello there. This is the second sentence, which is much longer than the first one. And a third.";
      const said = p.say(text);
      await waitFor(() => host.events.some((e) => e.type === "telop"), 5000, "first telop");
      const t1 = host.events.find((e): e is TelopEvent => e.type === "telop")!;
      assert.equal(t1.text, "Hello there.");
      assert.deepEqual(t1.words.map((w) => w.text), ["Hello", "there"]);
      await said; // all sentences synthesized and queued
      await waitFor(
        () => host.events.some((e) => e.type === "telop" && e.text.startsWith("This is the second")),
        8000,
        "second sentence playing",
      );
      await sleep(600);
      // the user starts speaking: feed the 48 kHz phrase in real time, note when speech begins
      const speech = load48k("one_phrase_48k.wav"); // 0.3 s silence, then speech
      let speechStartWall = 0;
      let clearedWall = 0;
      const clears0 = host.outbound.clears;
      const watch = setInterval(() => {
        if (!clearedWall && host.outbound.clears > clears0) clearedWall = performance.now();
      }, 2);
      await feed(p, host, speech.subarray(0, 48 * 1000), true, (ms) => {
        if (ms >= 300 && !speechStartWall) speechStartWall = performance.now();
      });
      clearInterval(watch);
      assert.ok(clearedWall > 0, "playback was cleared");
      const reaction = clearedWall - speechStartWall;
      assert.ok(reaction <= 200, `barge-in took ${reaction.toFixed(0)} ms`);
      const interrupted = host.events.filter((e): e is UtteranceEvent =>
        e.type === "utterance" && e.phase === "interrupted"
      );
      const cut = interrupted.find((e) => e.played_ms > 0)!;
      assert.ok(cut, JSON.stringify(interrupted));
      const telop = host.events.find((e): e is TelopEvent =>
        e.type === "telop" && e.utterance_id === cut.utterance_id
      )!;
      assert.ok(cut.played_ms < telop.duration_ms);
      assert.ok(cut.played_text && telop.text.startsWith(cut.played_text), String(cut.played_text));
      assert.ok(cut.played_text!.length < telop.text.length);
      // third sentence never started and is reported interrupted with nothing played
      assert.ok(interrupted.some((e) => e.played_ms === 0 && e.played_text === ""));
      assert.equal(host.outbound.queuedMs(), 0);
    } finally {
      await p.close();
      host.close();
    }
  },
});

Deno.test({
  name: "say with voice 'vits' (tiny model): per-session engine switch, telop timings marked estimated",
  ...opts,
  fn: async () => {
    const h = await hub();
    const host = new FakeHost("s-vits");
    const p = h.createPipeline(host, SessionOptions.parse({ mode: "say", voice: "vits" }));
    try {
      await p.say("Big bold words.");
      await waitFor(
        () => host.events.some((e) => e.type === "utterance" && e.phase === "finished"),
        8000,
        "played",
      );
      const t = host.events.find((e): e is TelopEvent => e.type === "telop")!;
      assert.equal(t.estimated, true);
      assert.deepEqual(t.words.map((w) => w.text), ["Big", "bold", "words"]);
      assert.ok(t.phonemes.some((ph) => ph.viseme === "closed"));
      const last = t.words[t.words.length - 1];
      assert.ok(last.start_ms + last.duration_ms <= t.duration_ms + 1);
    } finally {
      await p.close();
      host.close();
    }
  },
});

Deno.test({
  name:
    "say: sentences with nothing to speak (control characters, punctuation) get no utterance; never audio without telop",
  ...opts,
  fn: async () => {
    const h = await hub();
    const host = new FakeHost("s-control");
    const p = h.createPipeline(host, SessionOptions.parse({ mode: "say" }));
    try {
      await p.say("\u0001\u0002\u0007 ... !!!");
      assert.equal(host.outbound.queuedMs(), 0);
      assert.equal(host.events.length, 0, JSON.stringify(host.events));
      await p.say("\u0001\u0002. Hello there.");
      await waitFor(
        () => host.events.some((e) => e.type === "utterance" && e.phase === "finished"),
        8000,
        "played",
      );
      const telops = host.events.filter((e): e is TelopEvent => e.type === "telop");
      const utterances = host.events.filter((e) => e.type === "utterance" && e.phase === "started");
      // one utterance, and its audio came with its telop
      assert.deepEqual(telops.map((t) => t.words.map((w) => w.text)), [["Hello", "there"]]);
      assert.equal(utterances.length, 1);
      assert.ok(host.outbound.played.length > 20);
    } finally {
      await p.close();
      host.close();
    }
  },
});

Deno.test({
  name:
    "mute: frames ignored, open segment flushed; after a timestamp jump start_ms/end_ms stay in session time",
  ...opts,
  fn: async () => {
    const h = await hub();
    const host = new FakeHost("s-mute");
    const p = h.createPipeline(host, SessionOptions.parse({ partials: false }));
    try {
      const phrase = load48k("two_phrases_16k.wav");
      // first phrase, muted in the middle of its trailing silence: the segment is confirmed by the flush
      await feed(p, host, phrase.subarray(0, 48 * 1400), false, undefined, 0);
      await p.drain();
      p.setMuted(true);
      await feed(p, host, phrase, false, undefined, 1400); // ignored
      p.setMuted(false);
      // 10 s later in session time, the whole fixture again
      await feed(p, host, concat(phrase, silence(600)), false, undefined, 10_000);
      await p.drain();
      await waitFor(() => transcripts(host.events).length >= 3, 10000, "3 confirmed");
      const tr = transcripts(host.events);
      assert.equal(tr.length, 3, JSON.stringify(tr.map((t) => [t.start_ms, t.end_ms])));
      assert.ok(Math.abs(tr[0].start_ms - 544) < 100, `${tr[0].start_ms}`);
      assert.ok(tr[0].end_ms <= 1400);
      assert.ok(Math.abs(tr[1].start_ms - 10_544) < 100, `${tr[1].start_ms}`);
      assert.ok(Math.abs(tr[2].start_ms - 12_496) < 100, `${tr[2].start_ms}`);
    } finally {
      await p.close();
      host.close();
    }
  },
});

Deno.test({
  name: "overload: 5 sessions at once on 1 worker → partials shed, every segment still confirmed",
  ...opts,
  fn: async () => {
    const h = await hub();
    const shed = () =>
      ["overloaded", "SupersededError", "in_flight"].reduce(
        (n, reason) => n + registry.counter("parley_partials_dropped_total", "").get({ reason }),
        0,
      );
    const shed0 = shed();
    const phrase = concat(load48k("two_phrases_16k.wav").subarray(0, 48 * 1700), silence(600));
    const sessions = Array.from({ length: 5 }, (_, i) => {
      const host = new FakeHost(`s-over-${i}`, "t", false);
      return { host, p: h.createPipeline(host, SessionOptions.parse({})) };
    });
    try {
      await Promise.all(sessions.map((s) => feed(s.p, s.host, phrase, false, undefined, 0)));
      await Promise.all(sessions.map((s) => s.p.drain()));
      await waitFor(
        () =>
          sessions.every((s) =>
            transcripts(s.host.events).filter((e) => e.status === "confirmed").length === 1
          ),
        20000,
        "all confirmed",
      );
      for (const s of sessions) {
        const conf = transcripts(s.host.events).filter((e) => e.status === "confirmed");
        assert.deepEqual(conf.map((e) => e.segment_id), [1]);
      }
      assert.ok(shed() > shed0, "some partials were skipped");
    } finally {
      for (const s of sessions) {
        await s.p.close();
        s.host.close();
      }
    }
  },
});

Deno.test({
  name: "100 pipelines created, fed and closed: no thread growth (engines are shared, nothing per session)",
  ...opts,
  fn: async () => {
    const h = await hub();
    const threads = () => [...Deno.readDirSync("/proc/self/task")].length;
    const before = threads();
    const frame = new Int16Array(480).map((_, i) => Math.round(Math.sin(i / 5) * 8000));
    for (let i = 0; i < 100; i++) {
      const host = new FakeHost(`s-churn-${i}`, "t", false);
      const p = h.createPipeline(host, SessionOptions.parse({}));
      for (let k = 0; k < 20; k++) {
        p.push({ samples: frame, sampleRate: 48000, timestampMs: k * 10, receivedAt: performance.now() });
      }
      await p.drain();
      await p.close();
      host.close();
    }
    assert.equal(h.activePipelines, 0);
    assert.ok(threads() <= before + 2, `threads ${before} → ${threads()}`);
  },
});

Deno.test({
  name: "close cascades: pipeline closed, hub closed, workers terminated, calls reject",
  ...opts,
  fn: async () => {
    const h = await hub();
    const host = new FakeHost("s-close");
    const p = h.createPipeline(host, SessionOptions.parse({}));
    assert.equal(h.ready().ready, true);
    assert.equal(h.activePipelines, 1);
    await p.close();
    await p.close();
    assert.equal(p.state, "closed");
    await assert.rejects(p.say("hi"), /closed/);
    p.push({
      samples: new Int16Array(480),
      sampleRate: 48000,
      timestampMs: 0,
      receivedAt: performance.now(),
    });
    assert.equal(h.activePipelines, 0);
    const p2 = h.createPipeline(new FakeHost("s-close2"), SessionOptions.parse({}));
    const c1 = h.close();
    assert.equal(h.close(), c1);
    await c1;
    assert.equal(p2.state, "closed");
    assert.equal(h.state, "closed");
    const r = h.ready();
    assert.equal(r.ready, false);
    assert.equal(r.detail.speech_workers, 0);
    assert.equal(r.detail.vad_workers, 0);
    assert.throws(() => h.createPipeline(host, SessionOptions.parse({})), /closed/);
    await assert.rejects(h.synthesize("x"), /closed/);
    host.close();
  },
});

Deno.test({
  name: "EngineHub.create with a missing model rejects (offline, no Hub download) and leaves no workers",
  ...opts,
  fn: async () => {
    await assert.rejects(
      EngineHub.create({
        // espeak: loads at once, so the init failure is the missing model's, not a slow flite compile's
        ...engineHubConfig(
          parseConfig({ ASR_ENGINE: "whisper", ASR_MODEL: "no-such-model", TTS_ENGINE: "espeak" }),
        ),
        workers: 1,
        initTimeoutMs: 30_000,
      }),
      /init failed/,
    );
    const live = InferencePool.live().filter((p) => p.name === "speech" || p.name === "vad");
    // the shared test hub (if created) is already closed by the close test above
    assert.deepEqual(live, []);
  },
});
