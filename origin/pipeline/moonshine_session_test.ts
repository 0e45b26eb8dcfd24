/**
 * A session's speech pipeline with the real Moonshine engine in the speech workers (the `auto` default): real
 * VAD, human LibriVox recordings from pocketsphinx-testdata (a missing package fails with the install line),
 * fed in real time: partials from re-decoding the growing segment, then the confirmed text, in seq order.
 */
import assert from "node:assert/strict";
import { EngineHub } from "./engine_hub.ts";
import { concat, FakeHost, feed, silence } from "./host_double.ts";
import { floatToInt16, int16ToFloat, resampleAll } from "../../lib/audio/resampler.ts";
import { engineHubConfig } from "../engine_config.ts";
import { parseConfig } from "../../lib/config.ts";
import type { ServerEvent, TranscriptEvent } from "../../protocol/session_messages.ts";
import { SessionOptions } from "../../protocol/session_messages.ts";
import { configureLogging } from "../../lib/log.ts";
import { fliteSpeech, librivoxUtterances, readWav16k } from "../asr/sphinx/sphinx_testdata.ts";
import { editDistance } from "../asr/error_rate.ts";

configureLogging({ level: "error", sink: () => {} });
const opts = { sanitizeOps: false, sanitizeResources: false };

const words = (s: string) => s.toLowerCase().replace(/[^a-z' ]+/g, " ").split(/\s+/).filter(Boolean);
const transcripts = (ev: ServerEvent[]) =>
  ev.filter((e): e is TranscriptEvent & { seq: number } => e.type === "transcript");

Deno.test({
  name: "moonshine session: human speech → partials, then confirmed text (WER <= 20 %), seq increasing",
  ...opts,
  fn: async () => {
    const config = parseConfig({});
    const hub = await EngineHub.create({ ...engineHubConfig(config), workers: 1, jobTimeoutMs: 120_000 });
    assert.equal(hub.ready().detail.asr, "moonshine:moonshine-tiny-en");
    const [u0, u1] = librivoxUtterances();
    const pcm48 = (p: string) => floatToInt16(resampleAll(int16ToFloat(readWav16k(p)), 16000, 48000));
    const host = new FakeHost("s-moonshine");
    const p = hub.createPipeline(host, SessionOptions.parse({ mode: "transcribe" }));
    try {
      await feed(
        p,
        host,
        concat(silence(300), pcm48(u0.path), silence(1200), pcm48(u1.path), silence(1200)),
        true,
      );
      await p.finish();
      const ev = transcripts(host.events);
      const confirmed = ev.filter((e) => e.status === "confirmed");
      const text = confirmed.map((e) => e.alternatives[0].text).join(" ");
      const ref = words(`${u0.ref} ${u1.ref}`);
      const wer = editDistance(ref, words(text)) / ref.length;
      assert.ok(wer <= 0.2, `WER ${(100 * wer).toFixed(0)} %: "${text}"`);
      assert.ok(ev.some((e) => e.status === "partial"), "partials while speaking");
      const seqs = ev.map((e) => e.seq);
      assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
      assert.ok(confirmed.every((e) => typeof e.confidence === "number"), JSON.stringify(confirmed));
      assert.ok(!host.events.some((e) => e.type === "error"), JSON.stringify(host.events));
    } finally {
      await p.close();
      host.close();
      await hub.close();
    }
  },
});

Deno.test({
  name: 'moonshine session and uploaded file: "Thank you." and "You." are what the person said, not dropped',
  ...opts,
  fn: async () => {
    const hub = await EngineHub.create({
      ...engineHubConfig(parseConfig({})),
      workers: 1,
      jobTimeoutMs: 120_000,
    });
    // both are Whisper hallucinations the junk filter drops for Whisper; from Moonshine they are speech
    const phrases = [await fliteSpeech("Thank you.", "awb"), await fliteSpeech("You.", "awb")];
    const gap = new Int16Array(16_000);
    const pcm16 = concat(gap, phrases[0], gap, phrases[1], gap);
    const host = new FakeHost("s-moonshine-thanks");
    const p = hub.createPipeline(host, SessionOptions.parse({ mode: "transcribe" }));
    const fileEvents: TranscriptEvent[] = [];
    const file = hub.createFileRecognizer("file-thanks", undefined, (e) => {
      fileEvents.push(e as TranscriptEvent);
      return Promise.resolve();
    });
    try {
      await feed(p, host, floatToInt16(resampleAll(int16ToFloat(pcm16), 16000, 48000)), false);
      await p.finish();
      file.push16k(int16ToFloat(pcm16));
      await file.finish();
      const live = transcripts(host.events).filter((e) => e.status === "confirmed").map((e) =>
        e.alternatives[0].text
      );
      const uploaded = fileEvents.filter((e) => e.status === "confirmed").map((e) => e.alternatives[0].text);
      for (const texts of [live, uploaded]) {
        assert.deepEqual(texts.map((t) => words(t).join(" ")), ["thank you", "you"], JSON.stringify(texts));
      }
    } finally {
      file.close();
      await p.close();
      host.close();
      await hub.close();
    }
  },
});
