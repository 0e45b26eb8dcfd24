/**
 * The recognition half of a session's pipeline: inbound 10 ms frames (48 kHz) → 16 kHz → Silero VAD (batched,
 * off-loop) → segmenter → partial / confirmed `transcript` events (LocalAgreement stability for partials,
 * confirmed in segment order). How an engine is asked for results is the DecodeStrategy's business
 * (./decode.ts); this class decides when, and what is shown.
 *
 * It tells its owner what happened through messages (`speech_started`, `confirmed`), delivered synchronously:
 * barge-in and echo replies are the owner's decisions (./speech_pipeline.ts), not this class's.
 */
import type { TranscriptEvent, TranscriptWord } from "../../protocol/session_messages.ts";
import type { InboundFrame } from "./types.ts";
import type { AsrResult } from "../asr/engine.ts";
import { isJunkTranscript, isLowConfidence } from "../asr/junk_filter.ts";
import { OverloadedError } from "../inference/errors.ts";
import { StreamingResampler } from "../../lib/audio/resampler.ts";
import { newVadState, VAD_CHUNK_SAMPLES, type VadBackend } from "./vad.ts";
import { DEFAULT_SEGMENTER_CONFIG, Segmenter, type SegmenterConfig, type SegmentEvent } from "./segmenter.ts";
import { LocalAgreement } from "./stability.ts";
import type { DecodeStrategy, SegmentDecoder } from "./decode.ts";
import type { FrameDenoiser } from "../audio/denoise.ts";
import type { Logger } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";
import { ClosedError } from "../../lib/closed_error.ts";

export interface RecognizerConfig {
  segmenter: SegmenterConfig;
  /** First partial once the segment has this much speech (ms). */
  firstPartialMs: number;
  /** Then ask for a partial every this many ms of new audio. */
  partialIntervalMs: number;
  /**
   * Until a segment has shown text, a partial that came back with none is asked again after this much new audio
   * instead (at most partialIntervalMs): the first 250 ms of speech often decode to nothing, and waiting a whole
   * interval then delays the first words on screen.
   */
  emptyPartialRetryMs: number;
  /**
   * Drop results whose words all have a confidence below this (or, without word confidences, whose segment
   * confidence is below it); engines that report none are not filtered. Set on dev data (bench/
   * confidence_threshold.ts), never on evaluation transcripts.
   */
  minConfidence: number;
  /** Drop Whisper's known hallucinations ("Thank you.", "you", "Bye."): only for engines that make them up. */
  dropHallucinations: boolean;
}

export const DEFAULT_RECOGNIZER_CONFIG: RecognizerConfig = {
  segmenter: DEFAULT_SEGMENTER_CONFIG,
  firstPartialMs: 250,
  partialIntervalMs: 400,
  emptyPartialRetryMs: 200,
  minConfidence: 0.35,
  dropHallucinations: true,
};

export type TranscriptBody = Omit<TranscriptEvent, "seq">;

/** What the recognizer tells its owner. */
export type RecognizerMessage =
  /** The VAD opened a segment (the user started speaking). */
  | { type: "speech_started"; segmentId: number }
  /** A confirmed transcript was emitted (persisted and sent). */
  | { type: "confirmed"; event: TranscriptBody };

export interface RecognizerInit {
  /** Persist-and-send of a transcript event (the session's `emit`). */
  emit(event: TranscriptBody): Promise<unknown>;
  vad: VadBackend;
  decoder: DecodeStrategy;
  /** Whether partial results are wanted (the session option, read on every chunk). */
  partials: () => boolean;
  /** Noise suppression of inbound frames (owned: closed with the recognizer), used while `noiseSuppression()`. */
  denoiser?: FrameDenoiser;
  noiseSuppression?: () => boolean;
  /** End-of-speech silence (ms) instead of the segmenter's default. */
  silenceMs?: number;
  onMessage?: (message: RecognizerMessage) => void;
  /**
   * A segment's confirmed decode failed (after the pool's retry): tell the session (an `error` event). Left out
   * when the decoder strategy reports its own failures (the streaming one does, once per lost stream).
   */
  onError?: (code: string, message: string) => void;
  log: Logger;
  config?: Partial<RecognizerConfig>;
  /** false for uploaded files: their latency is not a live session's and stays out of the latency histogram. */
  live?: boolean;
}

/** Every inbound frame is 10 ms of 48 kHz (the session converts other sink rates). */
const INPUT_RATE = 48000;

const mFrames = registry.counter(
  "parley_pipeline_frames_total",
  "Inbound audio frames pushed into pipelines",
);
const mSegments = registry.counter(
  "parley_vad_segments_total",
  "VAD segments by outcome (end, forced, discard)",
);
const mDecode = registry.histogram(
  "parley_asr_decode_seconds",
  "Recognition round trip (queue + inference) by kind",
  [0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5],
);
const mLatency = registry.histogram(
  "parley_transcript_latency_seconds",
  "latency_ms of sent transcript events, by status",
  [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1, 1.5, 2, 5],
);
const mPartialsDropped = registry.counter(
  "parley_partials_dropped_total",
  "Partial decodes skipped or discarded, by reason",
);
const mDenoiseFailed = registry.counter(
  "parley_denoise_failed_frames_total",
  "Inbound frames passed on without noise suppression because the denoise worker failed",
);
const mResultsDropped = registry.counter(
  "parley_transcripts_dropped_total",
  "Recognition results not sent (empty, junk, low confidence)",
);

interface SegmentState {
  id: number;
  speechStart: number;
  /** Stream sample of the segment audio's first sample (pre-roll included): word times are relative to it. */
  audioStart: number;
  decoder: SegmentDecoder;
  agreement: LocalAgreement;
  lastPartialAt: number; // stream sample index of the audio end of the last partial request
  partialInFlight: boolean;
  skippedSlot: boolean;
  partialsSent: number;
  lastPartialText: string;
  /** The last partial decode had no text to show. */
  lastPartialEmpty: boolean;
  ended: boolean;
}

export class Recognizer {
  private closed = false;
  private muted = false;
  private readonly config: RecognizerConfig;
  private readonly log: Logger;
  private readonly resampler = new StreamingResampler(INPUT_RATE, 16000);
  private pending16k = new Float32Array(VAD_CHUNK_SAMPLES * 4);
  private pendingLen = 0;
  private readonly vadState = newVadState();
  private vadPending: Float32Array[] = [];
  private vadInFlight: Promise<void> | null = null;
  private readonly segmenter: Segmenter;
  /**
   * Stream sample (16 kHz) → session time anchors. A new anchor is added when frame timestamps jump (mute,
   * lost frames), so start_ms/end_ms stay in session time.
   */
  private anchors: Array<{ sample: number; ms: number }> = [];
  private samplesIn = 0;
  /** receivedAt of the frame completing each VAD chunk, by chunk index (ring). */
  private readonly chunkReceivedAt = new Float64Array(1024);
  private chunksSeen = 0;
  private segment: SegmentState | null = null;
  /** Frames waiting for (or in) noise suppression, in order; later frames queue behind them. */
  private denoisePending: InboundFrame[] = [];
  private denoiseInFlight: Promise<void> | null = null;
  private emitChain: Promise<unknown> = Promise.resolve();

  constructor(private readonly init: RecognizerInit) {
    this.config = { ...DEFAULT_RECOGNIZER_CONFIG, ...init.config };
    this.log = init.log;
    this.segmenter = new Segmenter({
      ...this.config.segmenter,
      ...(init.silenceMs ? { silenceMs: init.silenceMs } : {}),
    });
  }

  /** Stream samples (16 kHz) consumed by the VAD so far. */
  get position16k(): number {
    return this.segmenter.position;
  }

  push(frame: InboundFrame): void {
    if (this.closed || this.muted) return;
    mFrames.inc();
    if (
      this.denoiseInFlight || this.denoisePending.length ||
      (this.init.denoiser && this.init.noiseSuppression?.())
    ) {
      this.denoisePending.push(frame);
      this.pumpDenoise();
      return;
    }
    this.ingest(frame);
  }

  /**
   * One noise-suppression request in flight per stream; frames arriving meanwhile go together in the next. If
   * the worker fails, the frames go on unsuppressed (nothing is lost).
   */
  private pumpDenoise(): void {
    if (this.denoiseInFlight || !this.denoisePending.length || this.closed) return;
    const frames = this.denoisePending.splice(0, 100);
    const d = this.init.noiseSuppression?.() ? this.init.denoiser : undefined;
    const done = d ? d.process(frames.map((f) => f.samples)) : Promise.resolve(null);
    this.denoiseInFlight = done.then(
      (out) => {
        for (let i = 0; i < frames.length && !this.closed; i++) {
          this.ingest(out ? { ...frames[i], samples: out[i] } : frames[i]);
        }
      },
      (err) => {
        if (this.closed) return;
        mDenoiseFailed.inc(undefined, frames.length);
        this.log.warn("noise suppression failed; frames passed on unsuppressed", { error: err });
        for (let i = 0; i < frames.length && !this.closed; i++) this.ingest(frames[i]);
      },
    ).finally(() => {
      this.denoiseInFlight = null;
      this.pumpDenoise();
    });
  }

  /** A frame (suppressed or not) into resampling and the VAD. */
  private ingest(frame: InboundFrame): void {
    const last = this.anchors[this.anchors.length - 1];
    if (!last || Math.abs(last.ms + (this.samplesIn - last.sample) / 16 - frame.timestampMs) > 40) {
      this.anchors.push({ sample: this.samplesIn, ms: frame.timestampMs });
      if (this.anchors.length > 64) this.anchors.shift();
    }
    this.accept16k(this.resampler.process(frame.samples), frame.receivedAt);
  }

  /**
   * Audio that is already 16 kHz (an uploaded file, decoded and resampled): any length, pushed as fast as the
   * caller likes. Times are stream time (sample / 16). Pair with `finish()` at the end of the input.
   */
  push16k(x: Float32Array): void {
    if (this.closed) return;
    if (!this.anchors.length) this.anchors.push({ sample: 0, ms: 0 });
    this.accept16k(x, performance.now());
  }

  /** End of input: the open segment is ended as if silence followed, and every result has been emitted. */
  async finish(): Promise<void> {
    if (this.pendingLen) {
      this.accept16k(new Float32Array(VAD_CHUNK_SAMPLES - this.pendingLen), performance.now());
    }
    await this.drain();
    if (this.closed) return;
    for (const ev of this.segmenter.flush()) this.onSegmentEvent(ev);
    await this.drain();
  }

  private accept16k(x: Float32Array, receivedAt: number): void {
    this.samplesIn += x.length;
    if (this.pendingLen + x.length > this.pending16k.length) {
      const b = new Float32Array((this.pendingLen + x.length) * 2);
      b.set(this.pending16k.subarray(0, this.pendingLen));
      this.pending16k = b;
    }
    this.pending16k.set(x, this.pendingLen);
    this.pendingLen += x.length;
    while (this.pendingLen >= VAD_CHUNK_SAMPLES) {
      const chunk = this.pending16k.slice(0, VAD_CHUNK_SAMPLES);
      this.pending16k.copyWithin(0, VAD_CHUNK_SAMPLES, this.pendingLen);
      this.pendingLen -= VAD_CHUNK_SAMPLES;
      const index = this.chunksSeen++;
      this.chunkReceivedAt[index % this.chunkReceivedAt.length] = receivedAt;
      this.vadPending.push(chunk);
    }
    this.pumpVad();
  }

  /** Resolves when every pushed chunk has been through the VAD and segmenter (tests, benchmarks). */
  async drain(): Promise<void> {
    while ((this.denoiseInFlight || this.vadInFlight) && !this.closed) {
      await (this.denoiseInFlight ?? this.vadInFlight);
    }
    await this.emitChain;
  }

  setMuted(muted: boolean): void {
    if (this.closed || muted === this.muted) return;
    this.muted = muted;
    if (muted) {
      // what was said before muting is still recognised
      for (const ev of this.segmenter.flush()) this.onSegmentEvent(ev);
    }
  }

  setSilenceMs(ms: number): void {
    this.segmenter.setSilenceMs(ms);
  }

  /** Idempotent: queued decodes are cancelled, nothing more is emitted. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.denoisePending = [];
    this.init.decoder.close();
    this.init.denoiser?.close();
  }

  /**
   * One VAD request in flight per session; chunks that arrive meanwhile go together in the next request, so a
   * session that fell behind (slow worker, CPU contention) catches up in one round trip instead of one per chunk.
   */
  private pumpVad(): void {
    if (this.vadInFlight || !this.vadPending.length || this.closed) return;
    const chunks = this.vadPending.splice(0, 256);
    this.vadInFlight = this.init.vad.evaluateMany(this.vadState, chunks).then(
      (probs) => {
        for (let i = 0; i < chunks.length && !this.closed; i++) {
          this.onChunk(chunks[i], probs[i]);
        }
      },
      (err) => this.log.warn("vad failed", { error: err, chunks: chunks.length }),
    ).finally(() => {
      this.vadInFlight = null;
      this.pumpVad();
    });
  }

  private sessionMs(sample: number): number {
    let a = this.anchors[0] ?? { sample: 0, ms: 0 };
    for (const x of this.anchors) if (x.sample <= sample) a = x;
    return Math.round(a.ms + (sample - a.sample) / 16);
  }

  /** receivedAt of the frame that delivered stream sample `sample` (the last frame used for audio ending there). */
  private receivedAtOf(sample: number): number {
    const chunk = Math.max(0, Math.ceil(sample / VAD_CHUNK_SAMPLES) - 1);
    const idx = Math.min(chunk, this.chunksSeen - 1);
    if (this.chunksSeen - idx > this.chunkReceivedAt.length) return performance.now();
    return this.chunkReceivedAt[idx % this.chunkReceivedAt.length];
  }

  private onChunk(chunk: Float32Array, p: number): void {
    const before = this.segment;
    for (const ev of this.segmenter.push(chunk, p)) this.onSegmentEvent(ev);
    const seg = this.segment;
    if (!seg || seg.ended) return;
    // a segment opened by this chunk was fed its whole audio at start (pre-roll included)
    if (seg === before) seg.decoder.feed?.(chunk);
    const at = this.segmenter.pendingEndAt();
    if (at !== null) {
      // in the end-of-speech window the hypothesis cannot change: no partials there
      seg.decoder.speculate?.(at, () => this.segmenter.pendingEnd()!.audio);
    } else if (this.init.partials()) this.maybePartial(seg);
  }

  private onSegmentEvent(ev: SegmentEvent): void {
    if (ev.type === "start") {
      const decoder = this.init.decoder.open(ev.segmentId);
      const cur = this.segmenter.currentAudio();
      this.segment = {
        id: ev.segmentId,
        speechStart: ev.speechStart,
        audioStart: cur?.audioStart ?? ev.speechStart,
        decoder,
        agreement: new LocalAgreement(),
        lastPartialAt: 0,
        partialInFlight: false,
        skippedSlot: false,
        partialsSent: 0,
        lastPartialText: "",
        lastPartialEmpty: false,
        ended: false,
      };
      if (decoder.feed && cur) decoder.feed(cur.audio);
      this.init.onMessage?.({ type: "speech_started", segmentId: ev.segmentId });
      return;
    }
    const seg = this.segment;
    if (seg && seg.id === ev.segmentId) {
      seg.ended = true;
      this.segment = null;
    }
    if (ev.type === "discard") {
      mSegments.inc({ outcome: "discard" });
      return;
    }
    mSegments.inc({ outcome: ev.forced ? "forced" : "end" });
    this.confirm(ev, seg?.id === ev.segmentId ? seg.decoder : this.init.decoder.open(ev.segmentId));
  }

  private maybePartial(seg: SegmentState): void {
    // timing checks first; the segment audio is copied only when a decode is actually requested
    const end = this.segmenter.audioEnd;
    if (!end) return;
    const speechMs = this.segmenter.speechMs;
    if (speechMs < Math.max(this.config.firstPartialMs, this.config.segmenter.minSpeechMs)) return;
    const shown = seg.lastPartialText !== "";
    const interval = !shown && seg.lastPartialEmpty
      ? Math.min(this.config.emptyPartialRetryMs, this.config.partialIntervalMs)
      : this.config.partialIntervalMs;
    if (seg.lastPartialAt && (end - seg.lastPartialAt) / 16 < interval) return;
    if (seg.partialInFlight) {
      // the previous decode is still running: skip this slot (counted once per skipped interval)
      if (!seg.skippedSlot) mPartialsDropped.inc({ reason: "in_flight" });
      seg.skippedSlot = true;
      return;
    }
    seg.skippedSlot = false;
    seg.lastPartialAt = end;
    seg.partialInFlight = true;
    const receivedAt = this.receivedAtOf(end);
    const t0 = performance.now();
    // copied only if the strategy asks for it (re-decoding does; incremental decoders have the audio already)
    seg.decoder.partial(() => this.segmenter.currentAudio()?.audio ?? new Float32Array(0), { first: !shown })
      .then((r) => {
        mDecode.observe((performance.now() - t0) / 1000, { kind: "partial" });
        seg.partialInFlight = false;
        if (seg.ended || this.closed) {
          mPartialsDropped.inc({ reason: "stale" });
          return;
        }
        const best = r.alternatives[0];
        seg.lastPartialEmpty = !best || !best.text || this.junk(best.text) || this.lowConfidence(r);
        if (seg.lastPartialEmpty) {
          mPartialsDropped.inc({ reason: "empty_or_low_confidence" });
          return;
        }
        const split = seg.agreement.update(best.text);
        if (split.text === seg.lastPartialText) return; // nothing new to show
        const alternatives = [{ text: split.text, score: best.score }, ...r.alternatives.slice(1)];
        const event: TranscriptBody = {
          type: "transcript",
          segment_id: seg.id,
          status: "partial",
          alternatives,
          stable_text: split.stable,
          unstable_text: split.unstable,
          start_ms: this.sessionMs(seg.speechStart),
          end_ms: this.sessionMs(end),
          latency_ms: 0,
          ...this.scoring(r, seg.audioStart),
        };
        this.enqueueEmit(() => {
          if (seg.ended || this.closed) {
            mPartialsDropped.inc({ reason: "stale" });
            return null;
          }
          seg.lastPartialText = split.text;
          seg.partialsSent++;
          event.latency_ms = Math.round(performance.now() - receivedAt);
          mLatency.observe(event.latency_ms / 1000, { status: "partial" });
          return event;
        });
      }, (err) => {
        seg.partialInFlight = false;
        mPartialsDropped.inc({
          reason: err instanceof OverloadedError ? "overloaded" : err?.name ?? "error",
        });
      });
  }

  private lowConfidence(r: AsrResult): boolean {
    return isLowConfidence(r, this.config.minConfidence);
  }

  private junk(text: string): boolean {
    return isJunkTranscript(text, { phrases: this.config.dropHallucinations });
  }

  /** `words` in session time (from times relative to stream sample `audioStart`) and `confidence`, if known. */
  private scoring(r: AsrResult, audioStart: number): Pick<TranscriptBody, "words" | "confidence"> {
    const out: Pick<TranscriptBody, "words" | "confidence"> = {};
    if (r.words?.length) {
      out.words = r.words.map((w): TranscriptWord => ({
        text: w.text,
        start_ms: this.sessionMs(audioStart + w.start_ms * 16),
        end_ms: this.sessionMs(audioStart + w.end_ms * 16),
        confidence: w.confidence,
      }));
    }
    if (r.confidence !== null) out.confidence = r.confidence;
    return out;
  }

  private confirm(ev: Extract<SegmentEvent, { type: "end" }>, decoder: SegmentDecoder): void {
    const audioEnd = ev.audioStart + ev.audio.length;
    const receivedAt = this.receivedAtOf(audioEnd);
    const t0 = performance.now();
    const result = decoder.confirm({ audio: ev.audio, speechEnd: ev.speechEnd, forced: ev.forced });
    // awaited later in the emit chain; handle now so an early rejection (close) is not "unhandled"
    result.catch(() => {});
    // Emission is chained so confirmed results go out in segment order, before later partials.
    this.enqueueEmit(async () => {
      let r: AsrResult;
      try {
        r = await result;
      } catch (err) {
        if (!this.closed && !(err instanceof ClosedError)) {
          this.log.error("confirmed decode failed", { error: err, segment_id: ev.segmentId });
          this.init.onError?.(
            "recognizer_failed",
            `speech recognizer: the segment from ${this.sessionMs(ev.speechStart)} ms could not be decoded (${
              err instanceof Error ? err.message : String(err)
            })${this.init.live === false ? "" : "; later speech is recognized"}`,
          );
        }
        return null;
      }
      mDecode.observe((performance.now() - t0) / 1000, { kind: "confirmed" });
      if (this.closed) return null;
      const best = r.alternatives[0];
      if (!best || !best.text || this.junk(best.text) || this.lowConfidence(r)) {
        mResultsDropped.inc({
          reason: !best?.text ? "empty" : this.lowConfidence(r) ? "low_confidence" : "junk",
        });
        this.log.debug("confirmed result dropped", {
          segment_id: ev.segmentId,
          text: best?.text,
          confidence: r.confidence,
        });
        return null;
      }
      const latency = Math.round(performance.now() - receivedAt);
      if (this.init.live !== false) mLatency.observe(latency / 1000, { status: "confirmed" });
      return {
        type: "transcript",
        segment_id: ev.segmentId,
        status: "confirmed",
        alternatives: r.alternatives.filter((a) => a.text),
        stable_text: best.text,
        unstable_text: "",
        start_ms: this.sessionMs(ev.speechStart),
        end_ms: this.sessionMs(ev.speechEnd),
        latency_ms: latency,
        ...this.scoring(r, ev.audioStart),
      };
    }, (event) => this.init.onMessage?.({ type: "confirmed", event }));
  }

  private enqueueEmit(
    make: () => Promise<TranscriptBody | null> | TranscriptBody | null,
    after?: (e: TranscriptBody) => void,
  ): void {
    this.emitChain = this.emitChain.then(async () => {
      const event = await make();
      if (!event || this.closed) return;
      try {
        await this.init.emit(event);
        after?.(event);
      } catch (err) {
        if (!this.closed) this.log.warn("emit failed", { error: err });
      }
    });
  }
}
