/**
 * How the Recognizer turns a segment's audio into results. The Recognizer decides WHEN (VAD segments, partial
 * pacing, the end-of-speech window) and what is shown (stability, filters, order); a DecodeStrategy decides HOW
 * an engine is asked:
 *
 *  - re-decoding (./redecode.ts): every partial decodes the whole segment so far; the final decode may start
 *    early, when silence begins (speculative);
 *  - incremental (a streaming decoder): the segment's audio is fed as it arrives (`feed`), partials read the
 *    running hypothesis, the final result closes the utterance.
 *
 * All calls come from the media event loop and must return quickly: heavy work belongs in the inference pools.
 */
import type { AsrResult } from "../asr/engine.ts";

export interface SegmentEnd {
  /** Exactly the audio the confirmed result is made of (16 kHz). */
  audio: Float32Array;
  /** Stream sample (16 kHz) where speech ended. */
  speechEnd: number;
  /** Cut by the maximum segment length rather than by silence. */
  forced: boolean;
}

/** One segment's decoding. */
export interface SegmentDecoder {
  /**
   * Incremental strategies: the segment's audio in order, beginning with what it already holds when it opens
   * (pre-roll), then every VAD chunk while it lasts. Left out by strategies that re-decode (no copies made).
   */
  feed?(audio: Float32Array): void;
  /**
   * A partial result for the segment so far. `audio()` copies the segment's audio (re-decoding strategies); call
   * it before returning, the segment moves on. `first`: the segment has shown no text yet (its first partial, or
   * a retry after partials with nothing to show), so this one is what makes text appear.
   */
  partial(audio: () => Float32Array, opts?: { first?: boolean }): Promise<AsrResult>;
  /**
   * The end-of-speech window opened after speech that ended at `speechEnd` (called on every chunk of the
   * window): a strategy may start the final decode now. `audio()` copies what the confirmed result would be
   * (call it before returning).
   */
  speculate?(speechEnd: number, audio: () => Float32Array): void;
  /** The confirmed result of the ended segment. Never shed: it may wait, but it is decoded. */
  confirm(end: SegmentEnd): Promise<AsrResult>;
}

export interface DecodeStrategy {
  /** A segment started (`segmentId` from the segmenter). */
  open(segmentId: number): SegmentDecoder;
  /** The session ends: queued decodes are cancelled. */
  close(): void;
}
