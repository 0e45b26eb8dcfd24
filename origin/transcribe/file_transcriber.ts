/**
 * Transcription of an uploaded file (POST /v1/audio/transcriptions, through the edge): 16 kHz audio goes
 * through the same VAD, segmenter and recognizer as a live session (EngineHub.createFileRecognizer), faster
 * than real time, behind live work in the inference pools. Results come out as they are confirmed, in order.
 *
 * The audio is fed in blocks and each block is drained before the next, so one long file holds at most a
 * block's worth of queued work in the pools; several files share the pools like sessions do.
 */
import type { TranscriptBody } from "../pipeline/recognizer.ts";
import type { EngineHub } from "../pipeline/engine_hub.ts";
import { TRANSCRIBE_RATE, type TranscribeLine } from "../../protocol/openai.ts";
import type { Logger } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";
import { ClosedError } from "../../lib/closed_error.ts";

const BLOCK_SAMPLES = TRANSCRIBE_RATE * 8;

const mFiles = registry.counter("parley_transcriptions_total", "Uploaded-file transcriptions by outcome");
const mAudio = registry.counter(
  "parley_transcription_audio_seconds_total",
  "Seconds of uploaded audio transcribed",
);
const mRtf = registry.histogram(
  "parley_transcription_rtf",
  "Wall time ÷ audio duration of uploaded-file transcriptions",
  [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2],
);
const mActive = registry.gauge("parley_transcriptions_active", "Uploaded-file transcriptions running");

export class FileTranscriber {
  #active = new Set<AbortController>();
  #closed = false;
  #next = 0;

  constructor(private readonly hub: EngineHub, private readonly log: Logger) {
    mActive.collect(() => this.#active.size);
  }

  get active(): number {
    return this.#active.size;
  }

  /** Confirmed segments as they come, then `done` (or `error`). Stops early when `signal` aborts. */
  async *transcribe(
    pcm16k: Float32Array,
    opts: { language?: string; signal?: AbortSignal; requestId?: string },
  ): AsyncGenerator<TranscribeLine> {
    if (this.#closed) throw new ClosedError("file transcriber");
    const abort = new AbortController();
    const onAbort = () => abort.abort();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    this.#active.add(abort);
    const owner = `file:${opts.requestId ?? ""}:${this.#next++}`;
    const log = this.log.child({ owner, request_id: opts.requestId });
    const lines: TranscribeLine[] = [];
    let wake: (() => void) | null = null;
    const notify = () => {
      wake?.();
      wake = null;
    };
    let segments = 0;
    // A segment that could not be decoded fails the whole file: a transcript with a silent hole in it would
    // pass for complete.
    let lost = null as { code: string; message: string } | null;
    const onError = (code: string, message: string) => {
      lost ??= { code, message };
      abort.abort();
      notify();
    };
    const recognizer = this.hub.createFileRecognizer(owner, opts.language, (ev: TranscriptBody) => {
      const best = ev.alternatives[0];
      segments++;
      lines.push({
        type: "segment",
        id: ev.segment_id,
        start_ms: ev.start_ms,
        end_ms: ev.end_ms,
        text: ev.stable_text,
        score: best?.score ?? 0,
        ...(ev.words
          ? { words: ev.words.map((w) => ({ text: w.text, start_ms: w.start_ms, end_ms: w.end_ms })) }
          : {}),
      });
      notify();
      return Promise.resolve();
    }, onError);
    const t0 = performance.now();
    const durationMs = Math.round(pcm16k.length / (TRANSCRIBE_RATE / 1000));
    let finished = false;
    let failure: unknown = null;
    const feeding = (async () => {
      try {
        for (let at = 0; at < pcm16k.length && !abort.signal.aborted; at += BLOCK_SAMPLES) {
          recognizer.push16k(pcm16k.subarray(at, at + BLOCK_SAMPLES));
          await recognizer.drain();
        }
        if (!abort.signal.aborted) await recognizer.finish();
      } catch (e) {
        failure = e;
      } finally {
        finished = true;
        notify();
      }
    })();
    try {
      while (true) {
        while (lines.length && !lost) yield lines.shift()!;
        if (finished || lost) break;
        await new Promise<void>((r) => wake = r);
      }
      await feeding;
      if (lost) {
        mFiles.inc({ outcome: "error" });
        log.error("transcription failed", { code: lost.code, reason: lost.message });
        yield { type: "error", code: lost.code, message: lost.message };
        return;
      }
      if (abort.signal.aborted) {
        mFiles.inc({ outcome: "aborted" });
        return;
      }
      if (failure) {
        mFiles.inc({ outcome: "error" });
        log.error("transcription failed", { err: failure });
        yield { type: "error", code: "internal", message: "transcription failed" };
        return;
      }
      const wall = performance.now() - t0;
      mFiles.inc({ outcome: "ok" });
      mAudio.inc(undefined, durationMs / 1000);
      if (durationMs > 0) mRtf.observe(wall / durationMs);
      log.info("file transcribed", { audio_ms: durationMs, wall_ms: Math.round(wall), segments });
      yield { type: "done", duration_ms: durationMs, segments };
    } finally {
      abort.abort();
      recognizer.close();
      opts.signal?.removeEventListener("abort", onAbort);
      this.#active.delete(abort);
    }
  }

  /** Idempotent: running transcriptions stop (their streams end without `done`). */
  close(): Promise<void> {
    this.#closed = true;
    for (const a of this.#active) a.abort();
    return Promise.resolve();
  }
}
