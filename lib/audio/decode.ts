/**
 * Decode an uploaded audio file to mono float PCM. The format is sniffed from the bytes (a file name or
 * Content-Type lies too often to be trusted; they only colour the error message). WAV goes through the strict
 * parser here; MP3, FLAC, Ogg Opus and Ogg Vorbis through the wasm-audio-decoders family (one maintained
 * project, same API, WASM built in, no system libraries). Every decoder instance is created per call and
 * freed in `finally`, so a failed or hostile file never leaves WASM memory behind.
 *
 * Compressed input is fed in slices so a file that decodes to more than `maxDurationMs` is refused before it
 * has been expanded in full.
 */
import { FLACDecoder } from "@wasm-audio-decoders/flac";
import { OggVorbisDecoder } from "@wasm-audio-decoders/ogg-vorbis";
import { OggOpusDecoder } from "ogg-opus-decoder";
import { MPEGDecoder } from "mpg123-decoder";
import { AudioTooLargeError, InvalidAudioError, UnsupportedAudioError } from "./errors.ts";
import { parseWavHeader, wavToMonoFloat } from "./wav_parse.ts";
import { registry } from "../metrics.ts";

export type AudioFormat = "wav" | "mp3" | "flac" | "opus" | "vorbis";

export interface DecodedAudio {
  /** Mono samples in [-1, 1] (channels averaged). */
  pcm: Float32Array;
  sampleRate: number;
  /** Channels in the source (before the downmix). */
  channels: number;
  durationMs: number;
  format: AudioFormat;
}

export interface DecodeHint {
  filename?: string;
  contentType?: string;
}

export interface DecodeLimits {
  maxBytes?: number;
  maxDurationMs?: number;
}

/** OpenAI's upload limit. */
export const DEFAULT_MAX_AUDIO_BYTES = 25 * 1024 * 1024;
/** Ten minutes: ~115 MB of float samples at 48 kHz, the most one request should hold in memory. */
export const DEFAULT_MAX_AUDIO_DURATION_MS = 10 * 60 * 1000;
/** Compressed input is handed to the decoders this many bytes at a time (duration checked in between). */
const SLICE_BYTES = 64 * 1024;

const FORMAT_LABEL: Record<AudioFormat, string> = {
  wav: "WAV",
  mp3: "MP3",
  flac: "FLAC",
  opus: "Ogg Opus",
  vorbis: "Ogg Vorbis",
};

const decodedTotal = registry.counter(
  "parley_audio_decode_total",
  "Audio files decoded, by format and outcome",
);
const decodeSeconds = registry.histogram(
  "parley_audio_decode_seconds",
  "Wall time to decode one uploaded audio file",
);

function ascii(bytes: Uint8Array, off: number, len: number): string {
  let s = "";
  for (let i = off; i < off + len && i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return s;
}

/** Length of an ID3v2 tag at `off` (0 when there is none). */
function id3Length(bytes: Uint8Array, off: number): number {
  if (bytes.length < off + 10 || ascii(bytes, off, 3) !== "ID3") return 0;
  const s = bytes.subarray(off + 6, off + 10);
  if (s.some((b) => b & 0x80)) return 0;
  const size = (s[0] << 21) | (s[1] << 14) | (s[2] << 7) | s[3];
  const footer = bytes[off + 5] & 0x10 ? 10 : 0;
  return 10 + size + footer;
}

/** An MPEG audio frame header (Layer I/II/III, valid bitrate and rate indexes) at `off`. */
function isMpegFrame(bytes: Uint8Array, off: number): boolean {
  if (off + 4 > bytes.length) return false;
  const [b0, b1, b2] = [bytes[off], bytes[off + 1], bytes[off + 2]];
  return b0 === 0xff && (b1 & 0xe0) === 0xe0 && ((b1 >> 3) & 3) !== 1 && ((b1 >> 1) & 3) !== 0 &&
    (b2 >> 4) !== 15 && ((b2 >> 2) & 3) !== 3;
}

/** Names of common formats Parley refuses, so the 415 says what the file was. */
function describeUnknown(bytes: Uint8Array): string {
  if (bytes.length >= 12 && ascii(bytes, 4, 4) === "ftyp") return "MP4/M4A/AAC audio is not supported";
  if (bytes.length >= 4 && bytes[0] === 0x1a && bytes[1] === 0x45 && bytes[2] === 0xdf && bytes[3] === 0xa3) {
    return "WebM/Matroska audio is not supported";
  }
  if (ascii(bytes, 0, 4) === "FORM") return "AIFF is not supported";
  if (ascii(bytes, 0, 4) === ".snd") return "Sun/NeXT AU is not supported";
  if (ascii(bytes, 0, 4) === "caff") return "Core Audio (CAF) is not supported";
  if (ascii(bytes, 0, 5) === "#!AMR") return "AMR is not supported";
  if (bytes.length >= 2 && bytes[0] === 0xff && (bytes[1] & 0xf6) === 0xf0) {
    return "AAC (ADTS) is not supported";
  }
  return "audio format not recognised from its first bytes";
}

/** The format of `bytes`, from magic numbers only; throws UnsupportedAudioError for anything else. */
export function sniffAudioFormat(bytes: Uint8Array): AudioFormat {
  if (bytes.length === 0) throw new InvalidAudioError("empty file (0 bytes)");
  const head = ascii(bytes, 0, 4);
  if (head === "RIFF" || head === "RF64") {
    if (ascii(bytes, 8, 4) === "WAVE" || head === "RF64") return "wav";
    throw new UnsupportedAudioError(`RIFF form ${JSON.stringify(ascii(bytes, 8, 4))} is not WAVE`);
  }
  if (head === "OggS") {
    if (bytes.length < 27) throw new InvalidAudioError("Ogg: first page header is truncated");
    const payload = 27 + bytes[26];
    const codec = ascii(bytes, payload, 8);
    if (codec === "OpusHead") return "opus";
    if (codec.startsWith("\x01vorbis")) return "vorbis";
    if (payload + 8 > bytes.length) throw new InvalidAudioError("Ogg: first packet is truncated");
    if (codec.startsWith("\x7fFLAC")) throw new UnsupportedAudioError("Ogg FLAC is not supported");
    if (codec.startsWith("Speex")) throw new UnsupportedAudioError("Ogg Speex is not supported");
    throw new UnsupportedAudioError("Ogg stream of an unknown codec");
  }
  const skip = id3Length(bytes, 0);
  if (skip > 0 && skip >= bytes.length) throw new InvalidAudioError("ID3 tag with no audio after it");
  if (ascii(bytes, skip, 4) === "fLaC") return "flac";
  if (isMpegFrame(bytes, skip)) return "mp3";
  if (skip > 0) throw new UnsupportedAudioError("ID3 tag followed by no MP3 or FLAC frame");
  throw new UnsupportedAudioError(describeUnknown(bytes));
}

interface WasmDecodeResult {
  channelData: Float32Array[];
  samplesDecoded: number;
  sampleRate: number;
  errors: { message: string; frameNumber: number }[];
}

interface WasmDecoder {
  ready: Promise<void>;
  free(): void;
  decode(data: Uint8Array): WasmDecodeResult | Promise<WasmDecodeResult>;
  flush?(): Promise<WasmDecodeResult>;
}

function newDecoder(format: Exclude<AudioFormat, "wav">): WasmDecoder {
  switch (format) {
    case "mp3":
      return new MPEGDecoder() as unknown as WasmDecoder;
    case "flac":
      return new FLACDecoder() as unknown as WasmDecoder;
    case "opus":
      return new OggOpusDecoder() as unknown as WasmDecoder;
    case "vorbis":
      return new OggVorbisDecoder() as unknown as WasmDecoder;
  }
}

async function decodeCompressed(
  bytes: Uint8Array,
  format: Exclude<AudioFormat, "wav">,
  maxDurationMs: number,
): Promise<Omit<DecodedAudio, "format">> {
  const label = FORMAT_LABEL[format];
  const parts: Float32Array[][] = [];
  let total = 0, sampleRate = 0, channels = 0;
  const take = (r: WasmDecodeResult) => {
    if (r.errors.length > 0) {
      const e = r.errors[0];
      throw new InvalidAudioError(`${label}: corrupt data at frame ${e.frameNumber}: ${e.message}`);
    }
    if (r.samplesDecoded === 0) return;
    if (sampleRate === 0) {
      sampleRate = r.sampleRate;
      channels = r.channelData.length;
    } else if (r.sampleRate !== sampleRate) {
      throw new InvalidAudioError(
        `${label}: sample rate changes mid-stream (${sampleRate} → ${r.sampleRate} Hz)`,
      );
    }
    parts.push(r.channelData.map((c) => c.subarray(0, r.samplesDecoded)));
    total += r.samplesDecoded;
    if (total / sampleRate * 1000 > maxDurationMs) {
      throw new AudioTooLargeError(`${label}: longer than the ${maxDurationMs / 1000} s limit`);
    }
  };
  const decoder = newDecoder(format);
  try {
    await decoder.ready;
    for (let off = 0; off < bytes.length; off += SLICE_BYTES) {
      take(await decoder.decode(bytes.subarray(off, off + SLICE_BYTES)));
    }
    if (decoder.flush) take(await decoder.flush());
  } catch (e) {
    if (e instanceof InvalidAudioError || e instanceof AudioTooLargeError) throw e;
    throw new InvalidAudioError(`${label}: decoder failed: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    decoder.free();
  }
  if (total === 0 || channels === 0) {
    throw new InvalidAudioError(`${label}: no audio frames could be decoded`);
  }
  const pcm = new Float32Array(total);
  let at = 0;
  for (const chans of parts) {
    const n = chans[0].length;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (const c of chans) s += c[i];
      const v = s / chans.length;
      pcm[at + i] = Number.isFinite(v) ? Math.max(-1, Math.min(1, v)) : 0;
    }
    at += n;
  }
  return { pcm, sampleRate, channels, durationMs: (total / sampleRate) * 1000 };
}

/**
 * Decode `bytes` to mono float PCM at the file's own sample rate.
 * Throws UnsupportedAudioError (415), InvalidAudioError (400) or AudioTooLargeError (413), nothing else.
 * `hint` only improves messages: the format always comes from the bytes.
 */
export async function decodeAudio(
  bytes: Uint8Array,
  hint: DecodeHint = {},
  limits: DecodeLimits = {},
): Promise<DecodedAudio> {
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_AUDIO_BYTES;
  const maxDurationMs = limits.maxDurationMs ?? DEFAULT_MAX_AUDIO_DURATION_MS;
  const started = performance.now();
  let format: AudioFormat | "unknown" = "unknown";
  try {
    if (bytes.length > maxBytes) {
      throw new AudioTooLargeError(`file is ${bytes.length} bytes, the limit is ${maxBytes}`);
    }
    format = sniffAudioFormat(bytes);
    let result: Omit<DecodedAudio, "format">;
    if (format === "wav") {
      const info = parseWavHeader(bytes);
      if (info.frames === 0) throw new InvalidAudioError("WAV: data chunk holds no samples");
      if (info.durationMs > maxDurationMs) {
        throw new AudioTooLargeError(
          `WAV: ${Math.round(info.durationMs / 1000)} s is longer than the ${maxDurationMs / 1000} s limit`,
        );
      }
      result = {
        pcm: wavToMonoFloat(bytes, info),
        sampleRate: info.sampleRate,
        channels: info.channels,
        durationMs: info.durationMs,
      };
    } else {
      result = await decodeCompressed(bytes, format, maxDurationMs);
    }
    decodedTotal.inc({ format, outcome: "ok" });
    decodeSeconds.observe((performance.now() - started) / 1000);
    return { ...result, format };
  } catch (e) {
    const outcome = e instanceof UnsupportedAudioError
      ? "unsupported"
      : e instanceof AudioTooLargeError
      ? "too_large"
      : "invalid";
    decodedTotal.inc({ format, outcome });
    if (e instanceof UnsupportedAudioError && (hint.filename || hint.contentType)) {
      const named = [hint.filename, hint.contentType].filter(Boolean).join(", ");
      throw new UnsupportedAudioError(`${e.detail} (sent as ${named})`);
    }
    if (
      e instanceof UnsupportedAudioError || e instanceof InvalidAudioError || e instanceof AudioTooLargeError
    ) {
      throw e;
    }
    // A bug in a parser must still surface as a client error about this file, never a 500 with a stack.
    throw new InvalidAudioError(`unreadable audio: ${e instanceof Error ? e.message : String(e)}`);
  }
}
