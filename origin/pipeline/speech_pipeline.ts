/**
 * One session's speech pipeline: inbound 10 ms frames → resample to 16 kHz → Silero VAD (batched, off-loop) →
 * segmenter → streaming recognition (partials by re-decoding the growing segment, LocalAgreement stability,
 * confirmed at segment end) → `transcript` events; and text → sentence-by-sentence synthesis (off-loop) → 48 kHz
 * outbound audio with `utterance` and `telop` events at playout, barge-in on user speech.
 *
 * Everything heavy runs in the shared inference pools; this class only moves buffers and keeps state, so the
 * event loop that paces audio is never blocked for more than a few hundred microseconds per frame.
 */
import type {
  SessionOptions,
  TelopEvent,
  TranscriptEvent,
  UtteranceEvent,
} from "../../protocol/session_messages.ts";
import type { InboundFrame, PipelineHost, SpeechPipeline } from "./types.ts";
import type { AsrResult } from "../asr/engine.ts";
import { isJunkTranscript } from "../asr/junk_filter.ts";
import type { TtsJobResult } from "../inference/protocol.ts";
import type { SynthPhoneme, SynthWord } from "../tts/engine.ts";
import { splitSentences } from "../tts/sentences.ts";
import { StreamingResampler } from "./resampler.ts";
import { newVadState, VAD_CHUNK_SAMPLES, type VadBackend } from "./vad.ts";
import { DEFAULT_SEGMENTER_CONFIG, Segmenter, type SegmenterConfig, type SegmentEvent } from "./segmenter.ts";
import { LocalAgreement } from "./stability.ts";
import { log as rootLog, type Logger } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";

export interface PipelineConfig {
  segmenter: SegmenterConfig;
  /** First partial once the segment has this much speech (ms). */
  firstPartialMs: number;
  /** Then re-decode every this many ms of new audio. */
  partialIntervalMs: number;
  /** Drop results whose engine confidence is below this (engines that report one). */
  minConfidence: number;
  /** Longest text accepted by say(). */
  maxSayChars: number;
  /** Start the final decode as soon as silence begins (ready when the end-of-speech window closes). */
  speculativeFinal: boolean;
}

export const DEFAULT_PIPELINE_CONFIG: PipelineConfig = {
  segmenter: DEFAULT_SEGMENTER_CONFIG,
  firstPartialMs: 250,
  partialIntervalMs: 400,
  minConfidence: 0.35,
  maxSayChars: 5000,
  speculativeFinal: true,
};

/** What the hub gives a pipeline: the shared engines, as async calls. */
export interface PipelineEngines {
  vad: VadBackend;
  recognize(
    pcm16k: Float32Array,
    opts: {
      kind: "partial" | "speculative" | "confirmed";
      owner: string;
      coalesceKey?: string;
      language?: string;
    },
  ): Promise<AsrResult>;
  synthesize(text: string, voice: string | undefined, owner: string): Promise<TtsJobResult>;
  cancel(owner: string): void;
  /** A queued low-priority job (by coalesce key) is now needed for a confirmed result: run it as such. */
  promote(coalesceKey: string): void;
}

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
const mResultsDropped = registry.counter(
  "parley_transcripts_dropped_total",
  "Recognition results not sent (empty, junk, low confidence)",
);
const mTtsSeconds = registry.counter(
  "parley_tts_audio_seconds_total",
  "Synthesized audio queued for playout",
);
const mBargeIn = registry.counter("parley_barge_in_total", "Playback stopped because the user spoke");
const mSpeculative = registry.counter(
  "parley_asr_speculative_total",
  "Final decodes started during the end-of-speech window (started, used, fallback)",
);
const mActive = registry.gauge("parley_pipelines_active", "Live speech pipelines");

interface SegmentState {
  id: number;
  speechStart: number;
  agreement: LocalAgreement;
  lastPartialAt: number; // stream sample index of the audio end of the last partial request
  partialInFlight: boolean;
  skippedSlot: boolean;
  partialsSent: number;
  lastPartialText: string;
  ended: boolean;
  /** Decode started during the end-of-speech window, for the speech end it was made for. */
  speculative: { speechEnd: number; result: Promise<AsrResult> } | null;
}

interface Utterance {
  id: string;
  text: string;
  words: SynthWord[];
  phonemes: SynthPhoneme[];
  durationMs: number;
  estimated: boolean;
  state: "queued" | "playing" | "done";
}

export class StreamingPipeline implements SpeechPipeline {
  private _state: "running" | "closed" = "running";
  private options: SessionOptions;
  private muted = false;
  private readonly log: Logger;
  private readonly owner: string;
  private readonly ttsOwner: string;
  private readonly config: PipelineConfig;

  // input side
  private resampler: StreamingResampler | null = null;
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
  private emitChain: Promise<unknown> = Promise.resolve();

  // output side
  private sayCounter = 0;
  private sayGeneration = 0;
  private speakChain: Promise<void> = Promise.resolve();
  private readonly utterances = new Map<string, Utterance>();

  constructor(
    private readonly host: PipelineHost,
    private readonly engines: PipelineEngines,
    options: SessionOptions,
    config: Partial<PipelineConfig> = {},
  ) {
    this.config = { ...DEFAULT_PIPELINE_CONFIG, ...config };
    this.options = { ...options };
    this.owner = `pipeline:${host.sessionId}`;
    this.ttsOwner = `${this.owner}:tts`;
    this.log = rootLog.child({ component: "pipeline", session_id: host.sessionId, tenant_id: host.tenantId });
    this.segmenter = new Segmenter({
      ...this.config.segmenter,
      ...(options.vad_silence_ms ? { silenceMs: options.vad_silence_ms } : {}),
    });
    host.outbound.onPlayout((e) => this.onPlayout(e));
    mActive.inc();
  }

  get state(): "running" | "closed" {
    return this._state;
  }

  /** Stream samples (16 kHz) consumed by the VAD so far. */
  get position16k(): number {
    return this.segmenter.position;
  }

  push(frame: InboundFrame): void {
    if (this._state === "closed" || this.muted) return;
    mFrames.inc();
    if (!this.resampler || this.resampler.inRate !== frame.sampleRate) {
      this.resampler = new StreamingResampler(frame.sampleRate, 16000);
    }
    const last = this.anchors[this.anchors.length - 1];
    if (!last || Math.abs(last.ms + (this.samplesIn - last.sample) / 16 - frame.timestampMs) > 40) {
      this.anchors.push({ sample: this.samplesIn, ms: frame.timestampMs });
      if (this.anchors.length > 64) this.anchors.shift();
    }
    const x = this.resampler.process(frame.samples);
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
      this.chunkReceivedAt[index % this.chunkReceivedAt.length] = frame.receivedAt;
      this.vadPending.push(chunk);
    }
    this.pumpVad();
  }

  /**
   * One VAD request in flight per session; chunks that arrive meanwhile go together in the next request, so a
   * session that fell behind (slow worker, CPU contention) catches up in one round trip instead of one per chunk.
   */
  private pumpVad(): void {
    if (this.vadInFlight || !this.vadPending.length || this._state !== "running") return;
    const chunks = this.vadPending.splice(0, 256);
    this.vadInFlight = this.engines.vad.evaluateMany(this.vadState, chunks).then(
      (probs) => {
        for (let i = 0; i < chunks.length && this._state === "running"; i++) {
          this.onChunk(chunks[i], probs[i]);
        }
      },
      (err) => this.log.warn("vad failed", { error: err, chunks: chunks.length }),
    ).finally(() => {
      this.vadInFlight = null;
      this.pumpVad();
    });
  }

  /** Resolves when every pushed chunk has been through the VAD and segmenter (tests, benchmarks). */
  async drain(): Promise<void> {
    while (this.vadInFlight && this._state === "running") await this.vadInFlight;
    await this.emitChain;
  }

  say(text: string, voice?: string): Promise<void> {
    if (this._state === "closed") return Promise.reject(new Error("pipeline closed"));
    const clean = text.trim().slice(0, this.config.maxSayChars);
    if (!clean) return Promise.resolve();
    const sayId = ++this.sayCounter;
    const generation = this.sayGeneration;
    const sentences = splitSentences(clean);
    const v = voice ?? this.options.voice;
    // Sentences are synthesized `lookahead` ahead of the one being queued: the first plays while the next
    // ones render, and a long text never floods the shared pool (other sessions' synthesis interleaves).
    const lookahead = 2;
    const jobs: Array<Promise<{ ok: true; r: TtsJobResult } | { ok: false; e: Error }> | undefined> = [];
    const start = (i: number) => {
      if (i >= sentences.length || jobs[i] || generation !== this.sayGeneration || this._state === "closed") {
        return;
      }
      jobs[i] = this.engines.synthesize(sentences[i].text, v, this.ttsOwner).then(
        (r) => ({ ok: true as const, r }),
        (e) => ({ ok: false as const, e }),
      );
    };
    for (let i = 0; i < lookahead; i++) start(i);
    const run = async () => {
      for (let i = 0; i < sentences.length; i++) {
        start(i);
        const job = jobs[i];
        if (!job) return; // cancelled (barge-in / close)
        const res = await job;
        start(i + lookahead);
        if (this._state === "closed" || generation !== this.sayGeneration) return;
        if (!res.ok) {
          this.log.warn("synthesis failed", { error: res.e });
          await this.safeEmit({
            type: "error",
            code: "synthesis_failed",
            message: String(res.e?.message ?? res.e),
          });
          return;
        }
        const r = res.r;
        const id = `u${sayId}.${i + 1}`;
        this.utterances.set(id, {
          id,
          text: sentences[i].text,
          words: r.words,
          phonemes: r.phonemes,
          durationMs: r.durationMs,
          estimated: r.estimated,
          state: "queued",
        });
        const pcm = r.pcm instanceof Int16Array
          ? r.pcm
          : Int16Array.from(r.pcm, (v) => Math.round(v * 32767));
        this.host.outbound.enqueue(id, pcm);
        this.host.outbound.endUtterance(id);
        mTtsSeconds.inc(undefined, pcm.length / r.sampleRate);
      }
    };
    const p = this.speakChain.then(run);
    this.speakChain = p.catch(() => {});
    return p;
  }

  setMuted(muted: boolean): void {
    if (this._state === "closed" || muted === this.muted) return;
    this.muted = muted;
    if (muted) {
      // what was said before muting is still recognised
      for (const ev of this.segmenter.flush()) this.onSegmentEvent(ev);
    }
  }

  setOptions(options: Partial<SessionOptions>): void {
    this.options = { ...this.options, ...options };
    if (options.vad_silence_ms) this.segmenter.setSilenceMs(options.vad_silence_ms);
  }

  close(): Promise<void> {
    if (this._state === "closed") return Promise.resolve();
    this._state = "closed";
    this.sayGeneration++;
    this.engines.cancel(this.owner);
    this.engines.cancel(this.ttsOwner);
    mActive.dec();
    this.log.debug("pipeline closed");
    return Promise.resolve();
  }

  // ---------- recognition ----------

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
    for (const ev of this.segmenter.push(chunk, p)) this.onSegmentEvent(ev);
    const seg = this.segment;
    if (!seg || seg.ended) return;
    if (this.config.speculativeFinal) this.maybeSpeculate(seg);
    // in the end-of-speech window the hypothesis cannot change: no partials there
    if (this.options.partials && this.segmenter.pendingEndAt() === null) this.maybePartial(seg);
  }

  /**
   * Silence has started: decode what the confirmed result will be made of now, so that it is ready when the
   * end-of-speech window closes. Low priority (shed under overload); if speech resumes it is simply unused.
   */
  private maybeSpeculate(seg: SegmentState): void {
    const at = this.segmenter.pendingEndAt(); // cheap check first: the copy happens once per speech end
    if (at === null || seg.speculative?.speechEnd === at) return;
    const pending = this.segmenter.pendingEnd()!;
    const result = this.engines.recognize(pending.audio, {
      kind: "speculative",
      owner: this.owner,
      language: this.options.language,
      coalesceKey: `${this.owner}:speculative`,
    });
    result.catch(() => {}); // a failed speculation falls back to a normal decode
    seg.speculative = { speechEnd: pending.speechEnd, result };
    mSpeculative.inc({ outcome: "started" });
  }

  private onSegmentEvent(ev: SegmentEvent): void {
    if (ev.type === "start") {
      this.segment = {
        id: ev.segmentId,
        speechStart: ev.speechStart,
        agreement: new LocalAgreement(),
        lastPartialAt: 0,
        partialInFlight: false,
        skippedSlot: false,
        partialsSent: 0,
        lastPartialText: "",
        ended: false,
        speculative: null,
      };
      if (this.options.barge_in) this.bargeIn();
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
    const spec = !ev.forced && seg?.speculative?.speechEnd === ev.speechEnd ? seg.speculative.result : null;
    if (spec) this.engines.promote(`${this.owner}:speculative`);
    this.confirm(ev, spec);
  }

  private maybePartial(seg: SegmentState): void {
    // timing checks first; the segment audio is copied only when a decode is actually requested
    const end = this.segmenter.audioEnd;
    if (!end) return;
    const speechMs = this.segmenter.speechMs;
    if (speechMs < Math.max(this.config.firstPartialMs, this.config.segmenter.minSpeechMs)) return;
    if (seg.lastPartialAt && (end - seg.lastPartialAt) / 16 < this.config.partialIntervalMs) return;
    if (seg.partialInFlight) {
      // the previous decode is still running: skip this slot (counted once per skipped interval)
      if (!seg.skippedSlot) mPartialsDropped.inc({ reason: "in_flight" });
      seg.skippedSlot = true;
      return;
    }
    seg.skippedSlot = false;
    const cur = this.segmenter.currentAudio();
    if (!cur) return;
    seg.lastPartialAt = end;
    seg.partialInFlight = true;
    const receivedAt = this.receivedAtOf(end);
    const t0 = performance.now();
    this.engines.recognize(cur.audio, {
      kind: "partial",
      owner: this.owner,
      language: this.options.language,
      coalesceKey: `${this.owner}:partial`,
    })
      .then((r) => {
        mDecode.observe((performance.now() - t0) / 1000, { kind: "partial" });
        seg.partialInFlight = false;
        if (seg.ended || this._state === "closed") {
          mPartialsDropped.inc({ reason: "stale" });
          return;
        }
        const best = r.alternatives[0];
        if (!best || !best.text || isJunkTranscript(best.text) || this.lowConfidence(r)) {
          mPartialsDropped.inc({ reason: "empty_or_low_confidence" });
          return;
        }
        const split = seg.agreement.update(best.text);
        if (split.text === seg.lastPartialText) return; // nothing new to show
        const alternatives = [{ text: split.text, score: best.score }, ...r.alternatives.slice(1)];
        const event: Omit<TranscriptEvent, "seq"> = {
          type: "transcript",
          segment_id: seg.id,
          status: "partial",
          alternatives,
          stable_text: split.stable,
          unstable_text: split.unstable,
          start_ms: this.sessionMs(seg.speechStart),
          end_ms: this.sessionMs(end),
          latency_ms: 0,
        };
        this.enqueueEmit(() => {
          if (seg.ended || this._state === "closed") {
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
          reason: err?.name === "OverloadedError" ? "overloaded" : err?.name ?? "error",
        });
      });
  }

  private lowConfidence(r: AsrResult): boolean {
    return r.confidence !== null && r.confidence < this.config.minConfidence;
  }

  private confirm(ev: Extract<SegmentEvent, { type: "end" }>, speculative: Promise<AsrResult> | null): void {
    const audioEnd = ev.audioStart + ev.audio.length;
    const receivedAt = this.receivedAtOf(audioEnd);
    const t0 = performance.now();
    const decode = () =>
      this.engines.recognize(ev.audio, {
        kind: "confirmed",
        owner: this.owner,
        language: this.options.language,
      });
    // The speculative decode saw exactly this audio; if it was shed or failed, decode now (never dropped).
    const result = speculative
      ? speculative.then((r) => {
        mSpeculative.inc({ outcome: "used" });
        return r;
      }, () => {
        mSpeculative.inc({ outcome: "fallback" });
        return decode();
      })
      : decode();
    // awaited later in the emit chain; handle now so an early rejection (close) is not "unhandled"
    result.catch(() => {});
    // Emission is chained so confirmed results go out in segment order, before later partials.
    this.enqueueEmit(async () => {
      let r: AsrResult;
      try {
        r = await result;
      } catch (err) {
        if (this._state !== "closed") {
          this.log.error("confirmed decode failed", { error: err, segment_id: ev.segmentId });
        }
        return null;
      }
      mDecode.observe((performance.now() - t0) / 1000, { kind: "confirmed" });
      if (this._state === "closed") return null;
      const best = r.alternatives[0];
      if (!best || !best.text || isJunkTranscript(best.text) || this.lowConfidence(r)) {
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
      mLatency.observe(latency / 1000, { status: "confirmed" });
      const event: Omit<TranscriptEvent, "seq"> = {
        type: "transcript",
        segment_id: ev.segmentId,
        status: "confirmed",
        alternatives: r.alternatives.filter((a) => a.text),
        stable_text: best.text,
        unstable_text: "",
        start_ms: this.sessionMs(ev.speechStart),
        end_ms: this.sessionMs(ev.speechEnd),
        latency_ms: latency,
      };
      return event;
    }, (event) => {
      if (this.options.mode === "echo" && event.type === "transcript") {
        this.say(event.alternatives[0].text, this.options.voice).catch((err) =>
          this.log.warn("echo failed", { error: err })
        );
      }
    });
  }

  private enqueueEmit(
    make: () => Promise<Omit<TranscriptEvent, "seq"> | null> | Omit<TranscriptEvent, "seq"> | null,
    after?: (e: Omit<TranscriptEvent, "seq">) => void,
  ): void {
    this.emitChain = this.emitChain.then(async () => {
      const event = await make();
      if (!event || this._state === "closed") return;
      try {
        await this.host.emit(event);
        after?.(event);
      } catch (err) {
        if (this.state === "running") this.log.warn("emit failed", { error: err });
      }
    });
  }

  // ---------- playout, telop, barge-in ----------

  private isSpeaking(): boolean {
    for (const u of this.utterances.values()) if (u.state !== "done") return true;
    return this.host.outbound.queuedMs() > 0;
  }

  private bargeIn(): void {
    if (!this.isSpeaking()) return;
    this.sayGeneration++; // sentences still being synthesized are not queued
    this.engines.cancel(this.ttsOwner);
    const cut = this.host.outbound.clear();
    mBargeIn.inc();
    const seen = new Set<string>();
    for (const c of cut) {
      seen.add(c.utteranceId);
      this.interrupted(c.utteranceId, c.playedMs);
    }
    for (const u of this.utterances.values()) {
      if (u.state !== "done" && !seen.has(u.id)) this.interrupted(u.id, 0);
    }
    this.log.info("barge-in: playback stopped", { utterances: cut.length });
  }

  private interrupted(id: string, playedMs: number): void {
    const u = this.utterances.get(id);
    if (!u || u.state === "done") return;
    u.state = "done";
    this.utterances.delete(id);
    const spoken = u.words.filter((w) => w.start_ms < playedMs);
    const playedText = spoken.length ? u.text.slice(0, spoken[spoken.length - 1].char_end) : "";
    const event: Omit<UtteranceEvent, "seq"> = {
      type: "utterance",
      utterance_id: id,
      phase: "interrupted",
      played_ms: Math.round(playedMs),
      played_text: playedText,
    };
    void this.safeEmit(event);
  }

  private onPlayout(
    e: { utteranceId: string; phase: "started" | "finished"; sessionTimeMs: number; playedMs: number },
  ) {
    if (this._state === "closed") return;
    const u = this.utterances.get(e.utteranceId);
    if (!u || u.state === "done") return;
    if (e.phase === "started") {
      u.state = "playing";
      const started: Omit<UtteranceEvent, "seq"> = {
        type: "utterance",
        utterance_id: u.id,
        phase: "started",
        played_ms: 0,
      };
      const telop: Omit<TelopEvent, "seq"> = {
        type: "telop",
        utterance_id: u.id,
        text: u.text,
        playout_start_ms: Math.round(e.sessionTimeMs),
        duration_ms: Math.round(u.durationMs),
        words: u.words,
        phonemes: u.phonemes,
        estimated: u.estimated,
      };
      void this.safeEmit(started);
      void this.safeEmit(telop);
    } else {
      u.state = "done";
      this.utterances.delete(u.id);
      void this.safeEmit({
        type: "utterance",
        utterance_id: u.id,
        phase: "finished",
        played_ms: Math.round(e.playedMs),
      });
    }
  }

  private async safeEmit(event: Parameters<PipelineHost["emit"]>[0]): Promise<void> {
    if (this._state === "closed") return;
    try {
      await this.host.emit(event);
    } catch (err) {
      if (this.state === "running") this.log.warn("emit failed", { error: err });
    }
  }
}
