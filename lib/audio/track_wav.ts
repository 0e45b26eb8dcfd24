/**
 * Backing-track uploads: a WAV in, 16-bit mono 48 kHz PCM out (the format rooms play, 10 ms = 480 samples).
 *
 * The native format (PCM, 16-bit, 1 channel, 48 kHz) is stored as is. Other integer PCM (16/24/32-bit) or
 * float WAVs with 1 or 2 channels at 8–48 kHz are converted: channels averaged, resampled with the polyphase
 * resampler, dithered to 16-bit by rounding. Everything else is refused with the exact reason: 8-bit PCM
 * (too coarse for a music bed), more than 2 channels, rates above 48 kHz (Parley does not downsample a bed it
 * would lose detail from; convert it first), compressed WAV encodings (415); a corrupt, truncated or
 * self-contradictory file (RIFF size, chunk sizes, block align, 0 channels: 400, from the strict parser).
 */
import { ApiError } from "../errors.ts";
import { UnsupportedAudioError } from "./errors.ts";
import { floatToInt16, resampleAll } from "./resampler.ts";
import { parseWavHeader, wavToMonoFloat } from "./wav_parse.ts";

export const TRACK_RATE = 48_000;

/** A WAV Parley can read but will not take as a backing track: 415 with the reason. */
export class TrackFormatError extends ApiError {
  constructor(detail: string) {
    super(
      415,
      "unsupported_media_type",
      `${detail}; backing tracks are WAV PCM 16/24/32-bit or float, 1–2 channels, 8000–48000 Hz (native: 16-bit mono 48000 Hz)`,
    );
    this.name = "TrackFormatError";
  }
}

export interface TrackPcm {
  samples: Int16Array;
  durationMs: number;
  /** What was uploaded, e.g. "PCM 24-bit, 2 channels, 44100 Hz". */
  source: string;
  converted: boolean;
}

export function trackFromWav(bytes: Uint8Array, limits: { maxDurationMs: number }): TrackPcm {
  let info;
  try {
    info = parseWavHeader(bytes, { strict: true });
  } catch (e) {
    if (e instanceof UnsupportedAudioError) throw new TrackFormatError(e.detail);
    throw e;
  }
  const kind = info.sampleFormat === "pcm" ? "PCM" : "float";
  const source = `${kind} ${info.bitsPerSample}-bit, ${info.channels} channel${
    info.channels === 1 ? "" : "s"
  }, ${info.sampleRate} Hz`;
  if (info.sampleFormat === "pcm" && info.bitsPerSample === 8) {
    throw new TrackFormatError("8-bit PCM is too coarse for a backing track (16-bit or more)");
  }
  if (info.channels > 2) throw new TrackFormatError(`${info.channels} channels (at most 2, mixed to mono)`);
  if (info.sampleRate > TRACK_RATE) {
    throw new TrackFormatError(`sample rate ${info.sampleRate} Hz is above ${TRACK_RATE} Hz`);
  }
  if (info.sampleRate < 8000) {
    throw new TrackFormatError(`sample rate ${info.sampleRate} Hz is below 8000 Hz`);
  }
  if (info.frames === 0) throw new ApiError(400, "bad_request", "WAV: the data chunk holds no samples");
  if (info.durationMs > limits.maxDurationMs) {
    throw new ApiError(
      413,
      "payload_too_large",
      `track is ${Math.round(info.durationMs)} ms long, the limit is ${limits.maxDurationMs} ms`,
    );
  }
  const native = info.sampleFormat === "pcm" && info.bitsPerSample === 16 && info.channels === 1 &&
    info.sampleRate === TRACK_RATE;
  let samples: Int16Array;
  if (native) {
    samples = new Int16Array(info.frames);
    const dv = new DataView(bytes.buffer, bytes.byteOffset + info.dataOffset, info.dataBytes);
    for (let i = 0; i < info.frames; i++) samples[i] = dv.getInt16(i * 2, true);
  } else {
    const mono = wavToMonoFloat(bytes, info);
    samples = floatToInt16(
      info.sampleRate === TRACK_RATE ? mono : resampleAll(mono, info.sampleRate, TRACK_RATE),
    );
  }
  return {
    samples,
    durationMs: Math.round((samples.length / TRACK_RATE) * 1000),
    source,
    converted: !native,
  };
}
