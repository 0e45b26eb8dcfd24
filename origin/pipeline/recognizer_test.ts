/**
 * The Recognizer with an incremental DecodeStrategy (the way a streaming engine plugs in): real Silero VAD in
 * process, a test double for the engine that records what it is fed. Proves the decoder is fed the segment's
 * audio in order (pre-roll first, then each chunk), partials come from it without a copy of the segment, and
 * the owner hears speech_started before the confirmed transcript.
 */
import assert from "node:assert/strict";
import { Recognizer, type RecognizerMessage, type TranscriptBody } from "./recognizer.ts";
import type { DecodeStrategy, SegmentDecoder, SegmentEnd } from "./decode.ts";
import { BatchingVad } from "./vad.ts";
import { SileroVad } from "./silero_vad.ts";
import { readWav } from "./wav.ts";
import { floatToInt16, resampleAll } from "../../lib/audio/resampler.ts";
import { log } from "../../lib/log.ts";

const result = (text: string) => ({ alternatives: [{ text, score: 0 }], confidence: null, inferenceMs: 0 });

/** A streaming engine double: its hypothesis is the number of samples it was fed. */
class FedDecoder implements DecodeStrategy {
  readonly segments: Array<{ id: number; fed: number[]; end?: SegmentEnd }> = [];
  closed = false;
  open(segmentId: number): SegmentDecoder {
    const seg = { id: segmentId, fed: [] as number[], end: undefined as SegmentEnd | undefined };
    this.segments.push(seg);
    const total = () => seg.fed.reduce((s, n) => s + n, 0);
    return {
      feed: (audio) => void seg.fed.push(audio.length),
      partial: () => Promise.resolve(result(`heard ${total()}`)),
      confirm: (end) => {
        seg.end = end;
        return Promise.resolve(result(`final ${total()}`));
      },
    };
  }
  close(): void {
    this.closed = true;
  }
}

/** A Recognizer on the real Silero VAD whose emitted events land in `events`. */
function recognizer(
  vad: SileroVad,
  init: Omit<ConstructorParameters<typeof Recognizer>[0], "emit" | "vad" | "log">,
): { r: Recognizer; events: TranscriptBody[] } {
  const events: TranscriptBody[] = [];
  const r = new Recognizer({
    emit: (e) => {
      events.push(e);
      return Promise.resolve();
    },
    vad: new BatchingVad((items) => vad.runSequences(items)),
    log,
    ...init,
  });
  return { r, events };
}

/** A fixture as a peer sends it (48 kHz, 10 ms frames), then 1 s of silence; drained every `drainEvery` frames. */
async function pushFixture(r: Recognizer, name: string, drainEvery: number): Promise<void> {
  const wav = readWav(new URL(`../../tests/fixtures/speech/${name}`, import.meta.url));
  const pcm = floatToInt16(resampleAll(wav.samples, wav.sampleRate, 48000));
  const all = new Int16Array(pcm.length + 48 * 1000);
  all.set(pcm);
  for (let i = 0, k = 0; i + 480 <= all.length; i += 480, k++) {
    r.push({ samples: all.slice(i, i + 480), sampleRate: 48000, timestampMs: k * 10, receivedAt: 0 });
    if (k % drainEvery === 0) await r.drain();
  }
  await r.drain();
}

Deno.test("Recognizer + incremental decoder: fed in order from the pre-roll, partials from the running hypothesis, confirmed after speech_started", async () => {
  const vad = await SileroVad.load();
  const decoder = new FedDecoder();
  const messages: RecognizerMessage[] = [];
  const { r, events } = recognizer(vad, {
    decoder,
    partials: () => true,
    onMessage: (m) => messages.push(m),
  });
  try {
    await pushFixture(r, "two_phrases_16k.wav", 20);

    assert.equal(decoder.segments.length, 2, JSON.stringify(messages));
    for (const seg of decoder.segments) {
      assert.ok(seg.end, `segment ${seg.id} confirmed`);
      assert.ok(seg.fed[0] > 512, `pre-roll first (${seg.fed[0]} samples)`);
      assert.ok(seg.fed.slice(1).every((n) => n === 512), "then one 32 ms chunk at a time");
      // the decoder saw at least the audio the confirmed result is made of
      const fed = seg.fed.reduce((s, n) => s + n, 0);
      assert.ok(fed >= seg.end!.audio.length - 512, `fed ${fed} vs segment ${seg.end!.audio.length}`);
    }
    const confirmed = events.filter((e) => e.status === "confirmed");
    assert.equal(confirmed.length, 2);
    assert.ok(events.some((e) => e.status === "partial" && /^heard \d+$/.test(e.alternatives[0].text)));
    assert.deepEqual(messages.map((m) => m.type), [
      "speech_started",
      "confirmed",
      "speech_started",
      "confirmed",
    ]);
    r.close();
    r.close();
    assert.equal(decoder.closed, true);
  } finally {
    r.close();
    await vad.close();
  }
});

Deno.test("Recognizer, file input: push16k in large blocks with no trailing silence, finish() confirms every phrase, no partials", async () => {
  const vad = await SileroVad.load();
  const decoder = new FedDecoder();
  const { r, events } = recognizer(vad, { decoder, partials: () => false, live: false });
  try {
    const wav = readWav(new URL("../../tests/fixtures/speech/two_phrases_16k.wav", import.meta.url));
    const full = resampleAll(wav.samples, wav.sampleRate, 16000);
    // cut right after the speech: the last phrase is only confirmed because finish() ends the segment
    let last = full.length - 1;
    while (last > 0 && Math.abs(full[last]) < 0.02) last--;
    const pcm = full.subarray(0, last + 16 * 50);
    const block = 16000 * 3 + 123; // not a multiple of the VAD chunk
    for (let at = 0; at < pcm.length; at += block) {
      r.push16k(pcm.subarray(at, at + block));
      await r.drain();
    }
    const before = events.length;
    await r.finish();
    assert.equal(events.length, before + 1, "finish() confirmed the phrase still open at the end");
    assert.ok(events.length >= 2, `confirmed ${events.length}`);
    assert.ok(events.every((e) => e.status === "confirmed"));
    for (let i = 1; i < events.length; i++) assert.ok(events[i].start_ms >= events[i - 1].end_ms);
    const durationMs = (pcm.length / 16000) * 1000;
    assert.ok(events.at(-1)!.end_ms <= durationMs + 40, `${events.at(-1)!.end_ms} vs ${durationMs}`);
  } finally {
    r.close();
    r.close();
    await vad.close();
  }
  assert.ok(decoder.closed);
});

Deno.test("Recognizer: a confirmed decode that fails gives the owner one error naming the segment; the next segment is confirmed", async () => {
  const vad = await SileroVad.load();
  /** Fails the first segment's confirmed decode, as a worker lost twice (after the pool's retry) would. */
  class FailFirst extends FedDecoder {
    override open(segmentId: number): SegmentDecoder {
      const d = super.open(segmentId);
      const first = this.segments.length === 1;
      return first ? { ...d, confirm: () => Promise.reject(new Error("inference worker crashed")) } : d;
    }
  }
  const errors: Array<{ code: string; message: string }> = [];
  const { r, events } = recognizer(vad, {
    decoder: new FailFirst(),
    partials: () => false,
    onError: (code, message) => errors.push({ code, message }),
  });
  try {
    await pushFixture(r, "two_phrases_16k.wav", 20);
    assert.equal(errors.length, 1, JSON.stringify(errors));
    assert.equal(errors[0].code, "recognizer_failed");
    assert.match(errors[0].message, /segment from \d+ ms could not be decoded \(inference worker crashed\)/);
    assert.deepEqual(events.map((e) => e.status), ["confirmed"], "the second phrase is still confirmed");
  } finally {
    r.close();
    await vad.close();
  }
});

Deno.test("Recognizer: until a segment shows text, a partial with none is retried after emptyPartialRetryMs (200 ms), and ranks as first; then every partialIntervalMs (400 ms)", async () => {
  const vad = await SileroVad.load();
  /** Re-decoding double: its first two partials per segment have no text; notes each request's audio length. */
  const requests: Array<{ segment: number; samples: number; first: boolean }> = [];
  const decoder: DecodeStrategy = {
    open: (segment) => {
      let n = 0;
      return {
        partial: (audio, opts) => {
          requests.push({ segment, samples: audio().length, first: opts?.first ?? false });
          return Promise.resolve(result(n++ < 2 ? "" : `words ${n}`));
        },
        confirm: (end) => Promise.resolve(result(`final ${end.audio.length}`)),
      };
    },
    close: () => {},
  };
  const { r, events } = recognizer(vad, { decoder, partials: () => true });
  try {
    // every frame drained: decodes resolve at once, so every partial slot is taken when it comes
    await pushFixture(r, "one_phrase_48k.wav", 1);
    const segments = [...new Set(requests.map((q) => q.segment))];
    assert.ok(segments.length >= 1);
    let longest = 0;
    for (const id of segments) {
      const qs = requests.filter((q) => q.segment === id);
      const gapsMs = qs.slice(1).map((q, i) => (q.samples - qs[i].samples) / 16);
      longest = Math.max(longest, qs.length);
      // two empty answers: the next two requests come after ~200 ms (one VAD chunk of slack); then ~400 ms
      for (const g of gapsMs.slice(0, 2)) assert.ok(g >= 200 && g < 240, `retry gaps ${gapsMs}`);
      for (const g of gapsMs.slice(2)) assert.ok(g >= 400 && g < 440, `interval gaps ${gapsMs}`);
      assert.deepEqual(qs.map((q) => q.first), qs.map((_, i) => i < 3), JSON.stringify(qs));
    }
    assert.ok(longest >= 4, JSON.stringify(requests));
    assert.ok(events.some((e) => e.status === "partial" && e.alternatives[0].text === "words 3"));
  } finally {
    r.close();
    await vad.close();
  }
});
