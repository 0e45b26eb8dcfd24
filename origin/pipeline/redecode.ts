/**
 * The re-decoding strategy for engines that transcribe a whole buffer (CTC, Moonshine, Whisper): each partial
 * decodes the growing segment (low priority, one queued per session: a newer one supersedes it; a segment's
 * partials rank above the others until it shows text); once silence begins the final decode of exactly the audio
 * the confirmed result will be made of starts (speculative, low priority) and is promoted when the
 * end-of-speech window closes without new speech; the confirmed decode is high priority and retried if a
 * worker crashes.
 */
import type { AsrResult } from "../asr/engine.ts";
import type { DecodeStrategy, SegmentDecoder, SegmentEnd } from "./decode.ts";
import { registry } from "../../lib/metrics.ts";

/** The shared recognition pool, as the pipeline sees it. */
export interface RecognitionEngine {
  recognize(
    pcm16k: Float32Array,
    opts: {
      kind: "partial" | "speculative" | "confirmed";
      /**
       * A partial of a segment that shows no text yet: ranks above other partials and speculative decodes (text
       * appears sooner).
       */
      first?: boolean;
      owner: string;
      coalesceKey?: string;
      language?: string;
    },
  ): Promise<AsrResult>;
  /** A queued low-priority job (by coalesce key) is now needed for a confirmed result: run it as such. */
  promote(coalesceKey: string): void;
  /** Reject the queued jobs of an owner. */
  cancel(owner: string): void;
}

const mSpeculative = registry.counter(
  "parley_asr_speculative_total",
  "Final decodes started during the end-of-speech window (started, used, fallback)",
);

export class RedecodeStrategy implements DecodeStrategy {
  private readonly partialKey: string;
  private readonly speculativeKey: string;

  /** `owner`: the session's key for cancelling; `language()`: its current language option. */
  constructor(
    private readonly engine: RecognitionEngine,
    private readonly owner: string,
    private readonly language: () => string | undefined,
    private readonly speculative = true,
  ) {
    this.partialKey = `${owner}:partial`;
    this.speculativeKey = `${owner}:speculative`;
  }

  open(_segmentId: number): SegmentDecoder {
    /** Decode started during the end-of-speech window, for the speech end it was made for. */
    let spec: { speechEnd: number; result: Promise<AsrResult> } | null = null;
    const decoder: SegmentDecoder = {
      partial: (audio, opts) =>
        this.engine.recognize(audio(), {
          kind: "partial",
          first: opts?.first ?? false,
          owner: this.owner,
          language: this.language(),
          coalesceKey: this.partialKey,
        }),
      confirm: (end: SegmentEnd) => {
        const decode = () =>
          this.engine.recognize(end.audio, {
            kind: "confirmed",
            owner: this.owner,
            language: this.language(),
          });
        if (end.forced || spec?.speechEnd !== end.speechEnd) return decode();
        this.engine.promote(this.speculativeKey);
        // The speculative decode saw exactly this audio; if it was shed or failed, decode now (never dropped).
        return spec.result.then((r) => {
          mSpeculative.inc({ outcome: "used" });
          return r;
        }, () => {
          mSpeculative.inc({ outcome: "fallback" });
          return decode();
        });
      },
    };
    if (this.speculative) {
      decoder.speculate = (speechEnd, audio) => {
        if (spec?.speechEnd === speechEnd) return; // once per speech end: the copy happens only then
        const result = this.engine.recognize(audio(), {
          kind: "speculative",
          owner: this.owner,
          language: this.language(),
          coalesceKey: this.speculativeKey,
        });
        result.catch(() => {}); // a failed speculation falls back to a normal decode
        spec = { speechEnd, result };
        mSpeculative.inc({ outcome: "started" });
      };
    }
    return decoder;
  }

  close(): void {
    this.engine.cancel(this.owner);
  }
}
