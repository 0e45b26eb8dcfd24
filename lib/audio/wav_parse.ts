/**
 * Strict RIFF/WAVE parser. Reads every chunk header first (so `data` before `fmt ` works, odd-sized chunks are
 * padded), then checks the format against what the file really holds and refuses with the exact reason.
 *
 * Two modes:
 * - `strict: true` (stored media such as backing tracks): the RIFF size must match the file, the data must be
 *   whole frames and fit in the file — nothing is guessed.
 * - default (uploads to decode): the size 0 / 0xFFFFFFFF that streaming writers put in RIFF and `data` means
 *   "to the end of the file" (with an open-ended RIFF size, any `data` size that overruns does too, as in
 *   protocol/wav.ts' streaming header); a trailing partial frame is dropped. Otherwise a size that overruns the
 *   file is an error (a 2 GB claim in a 1 kB file is corrupt, not streaming).
 */
import { InvalidAudioError, UnsupportedAudioError } from "./errors.ts";

export type WavSampleFormat = "pcm" | "float";

export interface WavInfo {
  sampleFormat: WavSampleFormat;
  /** The WAVE format tag as written (1 PCM, 3 float, 0xFFFE extensible). */
  formatTag: number;
  channels: number;
  sampleRate: number;
  bitsPerSample: number;
  /** Bytes per frame (all channels). */
  blockAlign: number;
  /** Whole frames in the data chunk. */
  frames: number;
  /** Byte offset and length of the sample data within the file. */
  dataOffset: number;
  dataBytes: number;
  durationMs: number;
}

export interface WavParseOptions {
  strict?: boolean;
}

const FORMAT_NAMES: Record<number, string> = {
  2: "MS ADPCM",
  6: "A-law",
  7: "µ-law",
  0x11: "IMA ADPCM",
  0x31: "GSM 6.10",
  0x50: "MPEG",
  0x55: "MP3",
};
const STREAMING_SIZES = new Set([0, 0xffffffff]);
/** The tail that every KSDATAFORMAT_SUBTYPE GUID (PCM, IEEE_FLOAT) shares after its 2-byte format tag. */
const KSDATAFORMAT_TAIL = [
  0x00,
  0x00,
  0x00,
  0x00,
  0x10,
  0x00,
  0x80,
  0x00,
  0x00,
  0xaa,
  0x00,
  0x38,
  0x9b,
  0x71,
];
export const MAX_WAV_CHANNELS = 32;
export const MIN_WAV_RATE = 1000;
export const MAX_WAV_RATE = 384000;

function fourcc(bytes: Uint8Array, off: number): string {
  return String.fromCharCode(bytes[off], bytes[off + 1], bytes[off + 2], bytes[off + 3]);
}

function printable(id: string): string {
  return JSON.stringify(id);
}

export function parseWavHeader(bytes: Uint8Array, options: WavParseOptions = {}): WavInfo {
  const strict = options.strict ?? false;
  const bad = (msg: string) => new InvalidAudioError(`WAV: ${msg}`);
  if (bytes.length < 12) throw bad(`file is ${bytes.length} bytes, shorter than the 12-byte RIFF header`);
  if (fourcc(bytes, 0) === "RF64") throw new UnsupportedAudioError("RF64 (64-bit WAV) is not supported");
  if (fourcc(bytes, 0) !== "RIFF") throw bad(`missing "RIFF" magic`);
  if (fourcc(bytes, 8) !== "WAVE") throw bad(`RIFF form type is ${printable(fourcc(bytes, 8))}, not "WAVE"`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const riffSize = dv.getUint32(4, true);
  const streamingRiff = !strict && STREAMING_SIZES.has(riffSize);
  if (!streamingRiff) {
    // A single pad byte after an odd final chunk is legal either way.
    const expected = bytes.length - 8;
    if (strict ? riffSize !== expected && riffSize + 1 !== expected : riffSize > expected) {
      throw bad(`RIFF size mismatch: header says ${riffSize} bytes follow, file has ${expected}`);
    }
  }
  const end = streamingRiff ? bytes.length : Math.min(bytes.length, riffSize + 8);

  let fmt: { off: number; size: number } | undefined;
  let data: { off: number; size: number; streaming: boolean } | undefined;
  let off = 12;
  while (off + 8 <= end) {
    const id = fourcc(bytes, off);
    const size = dv.getUint32(off + 4, true);
    const body = off + 8;
    const remaining = end - body;
    if (id === "data") {
      if (data) throw bad("more than one data chunk");
      if (size > remaining) {
        if (!strict && (STREAMING_SIZES.has(size) || streamingRiff)) {
          data = { off: body, size: remaining, streaming: true };
          break;
        }
        throw bad(`data chunk claims ${size} bytes, file has ${remaining}`);
      }
      if (size === 0 && streamingRiff && remaining > 0) {
        data = { off: body, size: remaining, streaming: true };
        break;
      }
      data = { off: body, size, streaming: false };
    } else {
      if (size > remaining) throw bad(`chunk ${printable(id)} claims ${size} bytes, file has ${remaining}`);
      if (id === "fmt ") {
        if (fmt) throw bad("more than one fmt chunk");
        fmt = { off: body, size };
      }
    }
    off = body + size + (size & 1);
  }
  if (strict && off < end && end - off !== 0) {
    throw bad(`${end - off} stray bytes after the last chunk (a truncated chunk header)`);
  }
  if (!fmt) throw bad(data ? "no fmt chunk" : "no fmt chunk and no data chunk");
  if (!data) throw bad("no data chunk");
  if (fmt.size < 16) throw bad(`fmt chunk is ${fmt.size} bytes, needs at least 16`);

  let formatTag = dv.getUint16(fmt.off, true);
  const channels = dv.getUint16(fmt.off + 2, true);
  const sampleRate = dv.getUint32(fmt.off + 4, true);
  const byteRate = dv.getUint32(fmt.off + 8, true);
  const blockAlign = dv.getUint16(fmt.off + 12, true);
  const bitsPerSample = dv.getUint16(fmt.off + 14, true);
  const tagWritten = formatTag;
  if (formatTag === 0xfffe) {
    if (fmt.size < 40) throw bad(`WAVE_FORMAT_EXTENSIBLE fmt chunk is ${fmt.size} bytes, needs 40`);
    const validBits = dv.getUint16(fmt.off + 18, true);
    formatTag = dv.getUint16(fmt.off + 24, true);
    for (let i = 0; i < KSDATAFORMAT_TAIL.length; i++) {
      if (bytes[fmt.off + 26 + i] !== KSDATAFORMAT_TAIL[i]) {
        throw new UnsupportedAudioError("WAV: WAVE_FORMAT_EXTENSIBLE with a non-standard sub-format GUID");
      }
    }
    if (validBits > bitsPerSample) {
      throw bad(`${validBits} valid bits in a ${bitsPerSample}-bit container`);
    }
  }
  let sampleFormat: WavSampleFormat;
  if (formatTag === 1) sampleFormat = "pcm";
  else if (formatTag === 3) sampleFormat = "float";
  else {
    const name = FORMAT_NAMES[formatTag]
      ? `${FORMAT_NAMES[formatTag]} (format ${formatTag})`
      : `format ${formatTag}`;
    throw new UnsupportedAudioError(`WAV encoding ${name} is not supported`);
  }
  if (channels === 0) throw bad("0 channels");
  if (channels > MAX_WAV_CHANNELS) throw bad(`${channels} channels (at most ${MAX_WAV_CHANNELS})`);
  if (sampleRate < MIN_WAV_RATE || sampleRate > MAX_WAV_RATE) {
    throw bad(`sample rate ${sampleRate} Hz outside ${MIN_WAV_RATE}–${MAX_WAV_RATE} Hz`);
  }
  const okBits = sampleFormat === "pcm" ? [8, 16, 24, 32] : [32, 64];
  if (!okBits.includes(bitsPerSample)) {
    throw bad(
      `${bitsPerSample}-bit ${sampleFormat === "pcm" ? "PCM" : "float"} not supported (${
        okBits.join("/")
      }-bit are)`,
    );
  }
  const expectedAlign = channels * (bitsPerSample / 8);
  if (blockAlign !== expectedAlign) {
    throw bad(`block align ${blockAlign}, expected ${expectedAlign} for ${channels} × ${bitsPerSample}-bit`);
  }
  if (strict && byteRate !== sampleRate * blockAlign) {
    throw bad(`byte rate ${byteRate}, expected ${sampleRate * blockAlign}`);
  }
  if (strict && data.size % blockAlign !== 0) {
    throw bad(`data is ${data.size} bytes, not a whole number of ${blockAlign}-byte frames (truncated data)`);
  }
  const frames = Math.floor(data.size / blockAlign);
  return {
    sampleFormat,
    formatTag: tagWritten,
    channels,
    sampleRate,
    bitsPerSample,
    blockAlign,
    frames,
    dataOffset: data.off,
    dataBytes: frames * blockAlign,
    durationMs: (frames / sampleRate) * 1000,
  };
}

/** The samples of a parsed WAV as float in [-1, 1], channels averaged to mono. */
export function wavToMonoFloat(bytes: Uint8Array, info: WavInfo): Float32Array {
  const { channels, frames, blockAlign, bitsPerSample, sampleFormat } = info;
  const dv = new DataView(bytes.buffer, bytes.byteOffset + info.dataOffset, info.dataBytes);
  const bps = bitsPerSample / 8;
  const read: (o: number) => number = sampleFormat === "float"
    ? (bitsPerSample === 32 ? (o) => dv.getFloat32(o, true) : (o) => dv.getFloat64(o, true))
    : bitsPerSample === 8
    ? (o) => (dv.getUint8(o) - 128) / 128
    : bitsPerSample === 16
    ? (o) => dv.getInt16(o, true) / 32768
    : bitsPerSample === 24
    ? (o) => ((dv.getUint8(o) | (dv.getUint8(o + 1) << 8) | (dv.getInt8(o + 2) << 16)) / 8388608)
    : (o) => dv.getInt32(o, true) / 2147483648;
  const out = new Float32Array(frames);
  for (let f = 0; f < frames; f++) {
    let sum = 0;
    const base = f * blockAlign;
    for (let c = 0; c < channels; c++) sum += read(base + c * bps);
    const v = sum / channels;
    // Float WAVs may carry NaN/Inf or overs; clamp so downstream stages never see them.
    out[f] = Number.isFinite(v) ? Math.max(-1, Math.min(1, v)) : 0;
  }
  return out;
}
