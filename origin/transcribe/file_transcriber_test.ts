/**
 * FileTranscriber over a real Recognizer (Silero VAD, segmenter, re-decoding strategy). The recognition engine is
 * a double that answers like the speech pool: text per segment, or a rejection for the segment the test makes
 * fail (what the pool gives after its one retry when the worker is lost twice).
 */
import assert from "node:assert/strict";
import { FileTranscriber } from "./file_transcriber.ts";
import type { EngineHub } from "../pipeline/engine_hub.ts";
import { Recognizer, type TranscriptBody } from "../pipeline/recognizer.ts";
import { type RecognitionEngine, RedecodeStrategy } from "../pipeline/redecode.ts";
import { BatchingVad } from "../pipeline/vad.ts";
import { SileroVad } from "../pipeline/silero_vad.ts";
import { readWav } from "../pipeline/wav.ts";
import { resampleAll } from "../../lib/audio/resampler.ts";
import { log } from "../../lib/log.ts";
import type { TranscribeLine } from "../../protocol/openai.ts";
import type { AsrResult } from "../asr/engine.ts";

const result = (text: string): AsrResult => ({
  alternatives: [{ text, score: 0 }],
  confidence: null,
  inferenceMs: 1,
});

/** A hub whose file recognizer decodes with `recognize`; counts the decodes. */
async function hubWith(recognize: (call: number) => Promise<AsrResult>) {
  const vad = await SileroVad.load();
  let calls = 0;
  const engine: RecognitionEngine = {
    recognize: () => recognize(calls++),
    promote: () => {},
    cancel: () => {},
  };
  const hub = {
    createFileRecognizer: (
      owner: string,
      _language: string | undefined,
      emit: (e: TranscriptBody) => Promise<unknown>,
      onError?: (code: string, message: string) => void,
    ) =>
      new Recognizer({
        emit,
        vad: new BatchingVad((items) => vad.runSequences(items)),
        decoder: new RedecodeStrategy(engine, owner, () => undefined, false),
        partials: () => false,
        onError,
        log,
        live: false,
      }),
  } as unknown as EngineHub;
  return { hub, close: () => vad.close() };
}

/** Two phrases with a second of silence between them and after: two segments. */
function twoPhrases(): Float32Array {
  const wav = readWav(new URL("../../tests/fixtures/speech/two_phrases_16k.wav", import.meta.url));
  const pcm = resampleAll(wav.samples, wav.sampleRate, 16000);
  const out = new Float32Array(pcm.length + 16000);
  out.set(pcm);
  return out;
}

async function collect(t: FileTranscriber, pcm: Float32Array): Promise<TranscribeLine[]> {
  const out: TranscribeLine[] = [];
  for await (const l of t.transcribe(pcm, { requestId: "test" })) out.push(l);
  return out;
}

Deno.test("FileTranscriber: every segment decoded gives its lines, then done", async () => {
  const { hub, close } = await hubWith((n) => Promise.resolve(result(`phrase ${n}`)));
  const t = new FileTranscriber(hub, log);
  try {
    const lines = await collect(t, twoPhrases());
    const segs = lines.filter((l) => l.type === "segment");
    assert.equal(segs.length, 2, JSON.stringify(lines));
    assert.equal(lines.at(-1)?.type, "done");
  } finally {
    await t.close();
    await close();
  }
});

Deno.test("FileTranscriber: a segment that cannot be decoded fails the file with recognizer_failed, never a done with a hole", async () => {
  const { hub, close } = await hubWith((n) =>
    n === 0 ? Promise.reject(new Error("inference worker crashed")) : Promise.resolve(result(`phrase ${n}`))
  );
  const t = new FileTranscriber(hub, log);
  try {
    const lines = await collect(t, twoPhrases());
    assert.ok(!lines.some((l) => l.type === "done"), JSON.stringify(lines));
    const last = lines.at(-1);
    assert.equal(last?.type, "error", JSON.stringify(lines));
    if (last?.type !== "error") return;
    assert.equal(last.code, "recognizer_failed");
    assert.match(last.message, /the segment from \d+ ms could not be decoded \(inference worker crashed\)$/);
    assert.equal(t.active, 0);
  } finally {
    await t.close();
    await close();
  }
});
