/**
 * Speech segmenter: a pure state machine over VAD speech probabilities of fixed 16 kHz chunks (Silero v5: 512
 * samples = 32 ms). It owns the 16 kHz audio of the current segment (with pre-roll) and decides:
 *  - speech start: `startChunks` consecutive chunks with p ≥ `threshold` (hysteresis: once in speech, only
 *    p < `negThreshold` counts as silence);
 *  - speech end: `silenceMs` of continuous silence; segments with less than `minSpeechMs` of speech are discarded;
 *  - forced cut: a segment reaching `maxSegmentMs` is cut at its quietest chunk (lowest VAD probability, then
 *    lowest energy) in the last `cutSearchMs`, and speech continues in a new segment from there.
 * No timers, no I/O: everything is driven by `push(chunk, p)`, so it is deterministic and unit-testable.
 */

export interface SegmenterConfig {
  sampleRate: number; // 16000
  chunkSamples: number; // 512
  threshold: number;
  negThreshold: number;
  startChunks: number;
  preRollMs: number;
  minSpeechMs: number;
  silenceMs: number;
  /** Trailing silence kept in the segment audio (helps the recognizer finish the last word). */
  tailMs: number;
  maxSegmentMs: number;
  cutSearchMs: number;
}

export const DEFAULT_SEGMENTER_CONFIG: SegmenterConfig = {
  sampleRate: 16000,
  chunkSamples: 512,
  threshold: 0.5,
  negThreshold: 0.35,
  startChunks: 2,
  preRollMs: 300,
  minSpeechMs: 250,
  silenceMs: 400,
  tailMs: 160,
  maxSegmentMs: 18000,
  cutSearchMs: 6000,
};

export type SegmentEvent =
  | {
    type: "start";
    segmentId: number;
    /** 16 kHz sample index (stream time) where speech starts (after pre-roll). */
    speechStart: number;
  }
  | {
    type: "end";
    segmentId: number;
    /** Audio handed to the recognizer: pre-roll + speech + up to tailMs of trailing silence. */
    audio: Float32Array;
    /** Stream sample index of audio[0]. */
    audioStart: number;
    speechStart: number;
    /** Stream sample index just after the last speech chunk. */
    speechEnd: number;
    /** Cut at maxSegmentMs rather than ended by silence. */
    forced: boolean;
  }
  | { type: "discard"; segmentId: number; speechStart: number; speechMs: number };

export class Segmenter {
  readonly config: SegmenterConfig;
  private nextId = 1;
  /** Total samples pushed (stream time). */
  private pos = 0;
  private ring: Float32Array; // pre-roll ring (last preRoll samples while idle)
  private ringLen = 0;
  private inSpeech = false;
  private aboveRun = 0;
  private segId = 0;
  private buf = new Float32Array(16000 * 4);
  private bufLen = 0;
  private bufStart = 0; // stream index of buf[0]
  private speechStart = 0;
  private lastSpeechEnd = 0; // stream index after the last speech chunk
  private speechSamples = 0;
  private silenceRun = 0; // samples
  /** Per-chunk VAD probability and energy of the current segment, for the quietest-point search. */
  private chunkP: number[] = [];
  private chunkE: number[] = [];

  constructor(config: Partial<SegmenterConfig> = {}) {
    this.config = { ...DEFAULT_SEGMENTER_CONFIG, ...config };
    this.ring = new Float32Array(
      this.ms(this.config.preRollMs) + this.config.chunkSamples * this.config.startChunks,
    );
  }

  private ms(ms: number): number {
    return Math.round((ms * this.config.sampleRate) / 1000);
  }

  get active(): boolean {
    return this.inSpeech;
  }
  get currentSegmentId(): number {
    return this.inSpeech ? this.segId : 0;
  }
  /** Stream samples pushed so far. */
  get position(): number {
    return this.pos;
  }
  /** ms of speech in the current segment (0 when idle). */
  get speechMs(): number {
    return this.inSpeech ? (this.speechSamples * 1000) / this.config.sampleRate : 0;
  }

  setSilenceMs(ms: number): void {
    this.config.silenceMs = ms;
  }

  /**
   * While in speech but already `tailMs` into a silence: the exact audio an end right now would hand to the
   * recognizer (it does not change unless speech resumes), keyed by the speech end. Lets the pipeline decode
   * speculatively during the end-of-speech window. null otherwise.
   */
  pendingEnd(): { audio: Float32Array; speechEnd: number } | null {
    if (this.pendingEndAt() === null) return null;
    const end = Math.min(this.bufStart + this.bufLen, this.lastSpeechEnd + this.ms(this.config.tailMs));
    return { audio: this.buf.slice(0, end - this.bufStart), speechEnd: this.lastSpeechEnd };
  }

  /** The speech end `pendingEnd()` would be keyed by, without copying audio; null when not in that window. */
  pendingEndAt(): number | null {
    if (!this.inSpeech || this.silenceRun < this.ms(this.config.tailMs)) return null;
    if (this.speechSamples < this.ms(this.config.minSpeechMs)) return null;
    return this.lastSpeechEnd;
  }

  /** Stream index just after the current segment's audio (no copy); 0 when idle. */
  get audioEnd(): number {
    return this.inSpeech ? this.bufStart + this.bufLen : 0;
  }

  /** The current segment's audio so far (a copy) and its stream start index; null when idle. */
  currentAudio(): { audio: Float32Array; audioStart: number; speechStart: number } | null {
    if (!this.inSpeech) return null;
    return {
      audio: this.buf.slice(0, this.bufLen),
      audioStart: this.bufStart,
      speechStart: this.speechStart,
    };
  }

  push(chunk: Float32Array, p: number): SegmentEvent[] {
    const c = this.config;
    const events: SegmentEvent[] = [];
    const chunkStart = this.pos;
    this.pos += chunk.length;
    if (!this.inSpeech) {
      this.ringPush(chunk);
      if (p >= c.threshold) this.aboveRun++;
      else this.aboveRun = 0;
      if (this.aboveRun >= c.startChunks) {
        // Speech starts at the first chunk of the run; audio begins preRoll before that.
        const runStart = this.pos - this.aboveRun * c.chunkSamples;
        const audioStart = Math.max(0, runStart - this.ms(c.preRollMs), this.pos - this.ringLen);
        this.inSpeech = true;
        this.segId = this.nextId++;
        this.bufLen = 0;
        this.bufStart = audioStart;
        this.appendBuf(this.ring.subarray(this.ringLen - (this.pos - audioStart), this.ringLen));
        this.speechStart = runStart;
        this.speechSamples = this.aboveRun * c.chunkSamples;
        this.lastSpeechEnd = this.pos;
        this.silenceRun = 0;
        this.chunkP = [];
        this.chunkE = [];
        // per-chunk stats for the audio already in the buffer (approximate pre-roll as silence)
        for (let s = 0; s < this.bufLen; s += c.chunkSamples) {
          const inRun = this.bufStart + s >= runStart;
          this.chunkP.push(inRun ? p : 0);
          this.chunkE.push(energy(this.buf, s, Math.min(this.bufLen, s + c.chunkSamples)));
        }
        this.ringLen = 0;
        this.aboveRun = 0;
        events.push({ type: "start", segmentId: this.segId, speechStart: runStart });
      }
      return events;
    }
    this.appendBuf(chunk);
    this.chunkP.push(p);
    this.chunkE.push(energy(chunk, 0, chunk.length));
    if (p >= c.negThreshold) {
      this.silenceRun = 0;
      this.speechSamples += chunk.length;
      this.lastSpeechEnd = this.pos;
    } else {
      this.silenceRun += chunk.length;
    }
    void chunkStart;
    if (this.silenceRun >= this.ms(c.silenceMs)) {
      events.push(this.finish(false));
    } else if (this.bufLen >= this.ms(c.maxSegmentMs)) {
      events.push(...this.forceCut());
    }
    return events;
  }

  /** End the current segment now (mute, close, stream end). */
  flush(): SegmentEvent[] {
    if (!this.inSpeech) return [];
    return [this.finish(false)];
  }

  private finish(forced: boolean): SegmentEvent {
    const c = this.config;
    const id = this.segId;
    this.inSpeech = false;
    this.aboveRun = 0;
    if (this.speechSamples < this.ms(c.minSpeechMs)) {
      const ev: SegmentEvent = {
        type: "discard",
        segmentId: id,
        speechStart: this.speechStart,
        speechMs: (this.speechSamples * 1000) / c.sampleRate,
      };
      this.keepTailAsPreRoll();
      return ev;
    }
    const end = Math.min(this.bufStart + this.bufLen, this.lastSpeechEnd + this.ms(c.tailMs));
    const audio = this.buf.slice(0, end - this.bufStart);
    const ev: SegmentEvent = {
      type: "end",
      segmentId: id,
      audio,
      audioStart: this.bufStart,
      speechStart: this.speechStart,
      speechEnd: this.lastSpeechEnd,
      forced,
    };
    this.keepTailAsPreRoll();
    return ev;
  }

  /** After a segment ends, the last pre-roll worth of audio seeds the ring (speech may resume right away). */
  private keepTailAsPreRoll(): void {
    const n = Math.min(this.ring.length, this.bufLen);
    this.ring.set(this.buf.subarray(this.bufLen - n, this.bufLen), 0);
    this.ringLen = n;
    this.bufLen = 0;
  }

  private forceCut(): SegmentEvent[] {
    const c = this.config;
    const nChunks = this.chunkP.length;
    const searchChunks = Math.min(nChunks - 1, Math.round(this.ms(c.cutSearchMs) / c.chunkSamples));
    let best = nChunks - 1;
    for (let i = nChunks - searchChunks; i < nChunks; i++) {
      if (
        this.chunkP[i] < this.chunkP[best] - 1e-6 ||
        (Math.abs(this.chunkP[i] - this.chunkP[best]) <= 1e-6 && this.chunkE[i] < this.chunkE[best])
      ) best = i;
    }
    // Cut in the middle of the quietest chunk.
    const cutOffset = Math.min(this.bufLen, best * c.chunkSamples + (c.chunkSamples >> 1));
    const cutAt = this.bufStart + cutOffset;
    const id = this.segId;
    const ev: SegmentEvent = {
      type: "end",
      segmentId: id,
      audio: this.buf.slice(0, cutOffset),
      audioStart: this.bufStart,
      speechStart: this.speechStart,
      speechEnd: cutAt,
      forced: true,
    };
    // The remainder continues as a new segment, still in speech.
    const rest = this.buf.slice(cutOffset, this.bufLen);
    this.segId = this.nextId++;
    this.bufLen = 0;
    this.bufStart = cutAt;
    this.appendBuf(rest);
    this.chunkP = this.chunkP.slice(best + 1);
    this.chunkE = this.chunkE.slice(best + 1);
    this.speechStart = cutAt;
    this.speechSamples = rest.length;
    return [ev, { type: "start", segmentId: this.segId, speechStart: cutAt }];
  }

  private appendBuf(x: Float32Array): void {
    if (this.bufLen + x.length > this.buf.length) {
      const b = new Float32Array(Math.max(this.buf.length * 2, this.bufLen + x.length));
      b.set(this.buf.subarray(0, this.bufLen));
      this.buf = b;
    }
    this.buf.set(x, this.bufLen);
    this.bufLen += x.length;
  }

  private ringPush(x: Float32Array): void {
    const cap = this.ring.length;
    if (this.ringLen + x.length > cap) {
      const drop = this.ringLen + x.length - cap;
      this.ring.copyWithin(0, drop, this.ringLen);
      this.ringLen -= drop;
    }
    this.ring.set(x, this.ringLen);
    this.ringLen += x.length;
  }
}

function energy(x: Float32Array, from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i++) s += x[i] * x[i];
  return to > from ? s / (to - from) : 0;
}
