/**
 * The incremental DecodeStrategy for streaming engines (sphinx): one recognition stream per session, living in
 * one inference worker (its decoder never leaves that worker); each segment is an utterance on it. Audio is
 * fed as it arrives, in pieces of at most FLUSH_SAMPLES (nothing is decoded twice); a partial feeds what is
 * pending and reads the running hypothesis; the confirmed result feeds the rest and ends the utterance.
 *
 * A worker that dies takes its stream along: the session gets an `error` event, the segment in flight is
 * decoded again from its whole audio on a new stream (a live worker), and later segments use that stream.
 */
import type { AsrResult } from "../asr/engine.ts";
import type { DecodeStrategy, SegmentDecoder, SegmentEnd } from "./decode.ts";
import { WorkerCrashedError } from "../inference/errors.ts";
import { ClosedError } from "../../lib/closed_error.ts";
import { registry } from "../../lib/metrics.ts";

/** A recognition stream in a worker, as the pipeline sees it (the engine hub implements it on its pool). */
export interface RecognitionStream {
  feed(segment: number, pcm16k: Float32Array, partial: boolean): Promise<string | null>;
  finish(segment: number, pcm16k: Float32Array): Promise<AsrResult>;
  /** Frees the stream's decoder (fire and forget; idempotent). */
  close(): void;
}

export interface RecognitionStreams {
  /** Opens a stream on a live worker; rejects when none can take it. */
  open(id: string): Promise<RecognitionStream>;
}

/** Pending audio is sent once it reaches this many samples (160 ms at 16 kHz). */
export const FLUSH_SAMPLES = 2560;

const mStreams = registry.counter(
  "parley_asr_streams_total",
  "Recognition streams opened by outcome (ok, failed) and lost to a worker failure (lost)",
);
const mFeeds = registry.counter("parley_asr_stream_feeds_total", "Audio pieces fed to recognition streams");

function concat(parts: Float32Array[], length: number): Float32Array {
  const out = new Float32Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export class StreamingStrategy implements DecodeStrategy {
  private stream: Promise<RecognitionStream> | null = null;
  private generation = 0;
  private closed = false;
  /**
   * Settles once the previous segment's confirmed result is in. A segment's audio goes to the worker only after
   * it: the worker takes audio of a new segment as the end of the old one (it drops that unfinished utterance),
   * so a new segment's first piece must never overtake the old segment's finish (a worker behind real time makes
   * the old segment's last piece, and so its finish, late).
   */
  private previous: Promise<void> = Promise.resolve();

  /**
   * `id`: the session's stream id (unique per process); `onError(code, message)`: tell the session (an `error`
   * event) that recognition lost state.
   */
  constructor(
    private readonly streams: RecognitionStreams,
    private readonly id: string,
    private readonly onError: (code: string, message: string) => void,
  ) {
    this.current(); // open now: the decoder is ready when speech starts
  }

  /** The open stream, opening one if there is none. */
  private current(): { stream: Promise<RecognitionStream>; generation: number } {
    if (!this.stream) {
      const generation = ++this.generation;
      const stream = this.streams.open(`${this.id}#${generation}`);
      this.stream = stream;
      stream.then(() => mStreams.inc({ outcome: "ok" }), (err) => {
        mStreams.inc({ outcome: "failed" });
        this.lost(generation, err, "recognizer_unavailable");
      });
    }
    return { stream: this.stream, generation: this.generation };
  }

  /** A stream failed: forget it (the next segment opens a new one) and tell the session once. */
  private lost(generation: number, err: unknown, code = "recognizer_failed"): void {
    if (generation !== this.generation || this.stream === null || this.closed) return;
    const stream = this.stream;
    this.stream = null;
    if (code === "recognizer_failed") mStreams.inc({ outcome: "lost" });
    stream?.then((s) => s.close(), () => {});
    if (err instanceof ClosedError) return;
    this.onError(code, `speech recognizer: ${err instanceof Error ? err.message : String(err)}`);
  }

  private isStreamLoss(err: unknown): boolean {
    return err instanceof WorkerCrashedError || (err instanceof Error && err.name === "EngineError");
  }

  open(segmentId: number): SegmentDecoder {
    const { stream, generation } = this.current();
    const after = this.previous;
    let pending: Float32Array[] = [];
    let pendingLength = 0;
    let fed = 0;
    const take = (): Float32Array => {
      const pcm = concat(pending, pendingLength);
      pending = [];
      pendingLength = 0;
      return pcm;
    };
    /** The last piece sent: at most one is outstanding, so a slow worker gets bigger pieces, not a longer queue. */
    let last: Promise<string | null> | null = null;
    /** Set when the segment ends: no piece is sent after that, everything pending goes with the finish. */
    let confirming = false;
    const send = (partial: boolean): Promise<string | null> => {
      const pcm = take();
      fed += pcm.length;
      mFeeds.inc();
      const r = after.then(() => stream).then((s) => s.feed(segmentId, pcm, partial));
      last = r;
      r.then(() => {
        if (last !== r) return;
        last = null;
        // once confirming, the rest goes with the finish: a piece sent from here could reach the worker after
        // it (the finish is submitted in fewer promise steps) and would be lost
        if (pendingLength >= FLUSH_SAMPLES && !this.closed && !confirming) void send(false).catch(() => {});
      }, (err) => {
        if (last === r) last = null;
        if (this.isStreamLoss(err)) this.lost(generation, err);
      });
      return r;
    };
    /** After the outstanding piece (its failure is handled by `send`). */
    const settled = () => last ? last.then(() => {}, () => {}) : Promise.resolve();
    const confirm = async (end: SegmentEnd): Promise<AsrResult> => {
      confirming = true;
      // nothing fed (a segment opened at its end): the whole audio goes with the finish
      await after;
      // every piece sent is in the worker before the finish: wait for the outstanding one (no new one is sent)
      while (last) await settled();
      const pcm = fed === 0 ? end.audio : take();
      try {
        return await stream.then((s) => s.finish(segmentId, pcm));
      } catch (err) {
        if (this.closed || !this.isStreamLoss(err)) throw err;
        this.lost(generation, err);
        // decode the whole segment again on a new stream (a live worker)
        const retry = this.current();
        try {
          return await retry.stream.then((s) => s.finish(segmentId, end.audio.slice()));
        } catch (again) {
          if (this.isStreamLoss(again)) this.lost(retry.generation, again);
          throw again;
        }
      }
    };
    return {
      feed: (audio) => {
        if (this.closed || confirming) return;
        pending.push(audio.slice());
        pendingLength += audio.length;
        if (!last && pendingLength >= FLUSH_SAMPLES) void send(false).catch(() => {});
      },
      partial: async () => {
        const t0 = performance.now();
        // queued behind the outstanding piece, if any (same worker, FIFO): no wait for it here; none once the
        // segment is confirming (its result is on the way)
        const text = confirming ? "" : (await send(true)) ?? "";
        return {
          alternatives: text ? [{ text, score: 0 }] : [],
          // a running hypothesis has no posterior yet
          confidence: null,
          inferenceMs: performance.now() - t0,
        };
      },
      speculate: () => {
        // the end-of-speech window: catch the decoder up, so the confirmed result has little left to do
        if (!last && pendingLength && !confirming) void send(false).catch(() => {});
      },
      confirm: (end: SegmentEnd) => {
        const done = confirm(end);
        this.previous = done.then(() => {}, () => {});
        return done;
      },
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stream?.then((s) => s.close(), () => {});
    this.stream = null;
  }
}
