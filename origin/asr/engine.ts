/**
 * Speech recognition engines behind one interface. An engine turns a whole 16 kHz mono segment into ranked
 * alternatives; streaming (partials) is done by the pipeline re-decoding the growing segment.
 *
 *  - `ctc`: the bundled Wav2Vec2-style CTC recognizer (models/parley-asr-en) via `loadCtcRecognizer`
 *    (origin/asr/ctc_decoder.ts), with beam-search alternatives.
 *  - `whisper`: Transformers.js `automatic-speech-recognition` with any Whisper model (a local folder under
 *    MODELS_DIR, or a Hub id such as `onnx-community/whisper-base` when ALLOW_REMOTE_MODELS is true).
 *
 * Engines are loaded (origin/asr/factory.ts) inside inference workers (origin/inference), never on the media
 * event loop. This file holds the interfaces only, so engines, the factory and the worker protocol can all
 * import it without a cycle.
 */
import type { Alternative, TranscriptWord } from "../../protocol/session_messages.ts";
import type { AsrEngineName } from "../../protocol/engines.ts";
import type { SphinxConfig } from "./sphinx/sphinx_detect.ts";

export interface AsrConfig {
  engine: AsrEngineName;
  /** Folder name under modelsDir, an absolute path, or (whisper, remote allowed) a Hub id. */
  model: string;
  modelsDir: string;
  allowRemoteModels: boolean;
  /** Whisper: spoken language hint (e.g. "en"); ignored by English-only models. */
  language?: string;
  /** onnxruntime intra-op threads per worker. 1 is best with several workers on few cores. */
  intraOpNumThreads: number;
  /** Whisper: max new tokens per decode. */
  maxNewTokens?: number;
  /** Sphinx: model, LM/grammar and dictionary paths. */
  sphinx?: SphinxConfig;
}

/**
 * A word of the best alternative: the wire shape (TranscriptWord) with `start_ms`/`end_ms` in ms from the start
 * of the decoded audio; the Recognizer moves them to session time. `confidence` is engine-specific (ctc: mean
 * best-path posterior of the word's frames, origin/asr/ctc_align.ts; sphinx: lattice posterior).
 */
export type AsrWord = TranscriptWord;

export interface AsrResult {
  /** Best first; text trimmed. */
  alternatives: Alternative[];
  /**
   * 0..1 confidence of the best alternative, when the engine can tell (CTC: mean per-frame max posterior of the
   * non-blank frames); null when it cannot (Whisper via the pipeline API).
   */
  confidence: number | null;
  /** Wall time the engine spent, ms. */
  inferenceMs: number;
  /**
   * Words of alternatives[0] with timings relative to the first sample of the audio the engine was given (for a
   * streaming decoder: of the utterance it was fed), when the engine can align them.
   */
  words?: AsrWord[];
}

export interface AsrTranscribeOptions {
  /** false for partial (interim) decodes. */
  final?: boolean;
  /** Session language (e.g. "en", "de"); used by multilingual engines, ignored by the others. */
  language?: string;
}

export interface AsrEngine {
  readonly name: AsrEngineName;
  readonly model: string;
  /**
   * `final: false` marks a partial (interim) decode: engines may use a cheaper search (CTC: narrow beam, 1-best),
   * since the confirmed decode at segment end uses the full one.
   */
  transcribe(pcm16k: Float32Array, opts?: AsrTranscribeOptions): Promise<AsrResult>;
  /** Streaming engines: a recognizer for one audio stream (utterance after utterance). */
  openAsrStream?(): Promise<AsrStream>;
  /**
   * Idle-time work the worker runs between jobs (a streaming engine builds a warm decoder after one was lent).
   * Synchronous and bounded: one step per call; true when it did something.
   */
  housekeeping?(): boolean;
  dispose(): Promise<void>;
}

/**
 * One audio stream of a streaming engine, fed as audio arrives (never re-decoded). An utterance starts with the
 * first `process` after `finish` / `cancel`; `close` gives back any decoder it holds (idempotent).
 */
export interface AsrStream {
  process(pcm16k: Float32Array): void;
  /** The running hypothesis ("" between utterances). */
  partial(): string;
  /** Ends the running utterance: its result (times from the utterance's first sample). */
  finish(): AsrResult;
  /** Drops the running utterance. */
  cancel(): void;
  close(): void;
}
