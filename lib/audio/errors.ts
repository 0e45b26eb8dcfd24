/**
 * One error type per way an uploaded audio file can be refused. Each is an `ApiError`, so a route that lets it
 * propagate answers with the right status and `{error:{code,message}}` body without extra mapping.
 */
import { ApiError } from "../errors.ts";

/** The formats `decodeAudio` accepts, named the way a client would (listed in 415 messages). */
export const ACCEPTED_AUDIO_TYPES =
  "WAV (PCM 8/16/24/32-bit integer, 32/64-bit float, WAVE_FORMAT_EXTENSIBLE), MP3, FLAC, Ogg Opus, Ogg Vorbis";

/** Not an audio format Parley decodes (sniffed from the bytes, not the name): 415. */
export class UnsupportedAudioError extends ApiError {
  constructor(readonly detail: string) {
    super(415, "unsupported_media_type", `${detail}; accepted: ${ACCEPTED_AUDIO_TYPES}`);
    this.name = "UnsupportedAudioError";
  }
}

/** A recognised format whose bytes are corrupt, truncated or self-contradictory: 400. */
export class InvalidAudioError extends ApiError {
  constructor(message: string) {
    super(400, "bad_request", message);
    this.name = "InvalidAudioError";
  }
}

/** Larger than the caller's byte or duration limit: 413. */
export class AudioTooLargeError extends ApiError {
  constructor(message: string) {
    super(413, "payload_too_large", message);
    this.name = "AudioTooLargeError";
  }
}

/** The process cannot open another encoder of this kind right now (a codec's fixed WASM heap is full): 503. */
export class EncoderCapacityError extends ApiError {
  constructor(message: string) {
    super(503, "unavailable", message, { "retry-after": "1" });
    this.name = "EncoderCapacityError";
  }
}
