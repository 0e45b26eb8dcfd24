/**
 * Encode mono PCM to the response formats of /v1/audio/speech and to compressed job audio, in one shot
 * (`encodeAudio`) or as a stream (`createEncoder`: `write()` returns the bytes ready so far, so a response
 * can send audio while synthesis is still running).
 *
 * - wav/pcm: PCM16 (the WAV header of protocol/wav.ts; open-ended sizes when streaming).
 * - mp3: @breezystack/lamejs (pure JS, no native state).
 * - opus: opusscript (libopus 1.4 in WASM) in Ogg pages from ./ogg_mux.ts. Opus takes 8/12/16/24/48 kHz only;
 *   other rates must be resampled by the caller first.
 * - flac: libflacjs (libFLAC in WASM), 16-bit.
 * WASM encoder state is freed by `close()` (idempotent; `end()` closes too).
 */
import { concatBytes, int16LeBytes } from "./bytes.ts";
import { Mp3Encoder } from "@breezystack/lamejs";
import Flac from "libflacjs/dist/libflac.js";
import { wavHeader } from "../../protocol/wav.ts";
import { OggPageWriter } from "./ogg_mux.ts";
import { OPUS_PRE_SKIP, OpusFrameEncoder } from "./opus_frames.ts";
import { registry } from "../metrics.ts";

export type EncodeFormat = "wav" | "pcm" | "mp3" | "opus" | "flac";
export const ENCODE_FORMATS: readonly EncodeFormat[] = ["wav", "pcm", "mp3", "opus", "flac"];

export const CONTENT_TYPES: Record<EncodeFormat, string> = {
  wav: "audio/wav",
  pcm: "audio/pcm",
  mp3: "audio/mpeg",
  opus: "audio/ogg; codecs=opus",
  flac: "audio/flac",
};

export interface EncodeOptions {
  /**
   * Target bit rate in bits/s (mp3, opus). Defaults: opus 32 kbit/s; mp3 48 kbit/s at 22–24 kHz, 64 kbit/s at
   * 44.1–48 kHz (raised to the floor that keeps the input rate, see MP3_MIN_KBPS).
   */
  bitrate?: number;
  /** FLAC compression level 0–8 (default 5). */
  flacLevel?: number;
  /** Opus encoder complexity 0–10 (libopus default 10): lower costs less CPU for slightly lower quality. */
  complexity?: number;
}

export interface AudioEncoder {
  readonly format: EncodeFormat;
  readonly sampleRate: number;
  readonly contentType: string;
  /** Encode more samples (Int16, or float in [-1, 1]); returns the bytes that are complete (may be empty). */
  write(pcm: Int16Array | Float32Array): Uint8Array;
  /** Finish the stream: the remaining bytes (trailer, last pages). Frees the encoder. */
  end(): Uint8Array;
  /** Free native state without finishing; idempotent. */
  close(): void;
}

/** Sample rates each codec accepts as input. */
export const OPUS_RATES = [8000, 12000, 16000, 24000, 48000] as const;
export const MP3_RATES = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000] as const;
/**
 * Below these bit rates LAME switches to a lower output rate and lamejs' resampler then emits near-silence
 * (checked for every rate by decoding back), so the bit rate is raised to keep the input rate.
 */
const MP3_MIN_KBPS: Record<number, number> = {
  8000: 8,
  11025: 16,
  12000: 16,
  16000: 16,
  22050: 32,
  24000: 40,
  32000: 48,
  44100: 64,
  48000: 64,
};
const MP3_DEFAULT_KBPS: Record<number, number> = {
  8000: 16,
  11025: 24,
  12000: 24,
  16000: 32,
  22050: 48,
  24000: 48,
  32000: 56,
  44100: 64,
  48000: 64,
};

const encodedBytes = registry.counter("parley_audio_encoded_bytes_total", "Bytes produced by audio encoders");
const openEncoders = registry.gauge("parley_audio_encoders_open", "Audio encoders not yet closed, by format");

const EMPTY = new Uint8Array(0);

function toInt16(pcm: Int16Array | Float32Array): Int16Array {
  if (pcm instanceof Int16Array) return pcm;
  const out = new Int16Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) {
    const v = pcm[i];
    out[i] = !(v === v) ? 0 : v >= 1 ? 32767 : v <= -1 ? -32768 : Math.round(v * 32767);
  }
  return out;
}

function checkRate(format: EncodeFormat, sampleRate: number, allowed?: readonly number[]): void {
  if (!Number.isInteger(sampleRate) || sampleRate < 1000 || sampleRate > 384000) {
    throw new RangeError(`${format}: invalid sample rate ${sampleRate}`);
  }
  if (allowed && !allowed.includes(sampleRate)) {
    throw new RangeError(
      `${format}: ${sampleRate} Hz not supported (resample to one of ${allowed.join(", ")})`,
    );
  }
}

/** Base: bookkeeping shared by every format (closed state, metrics, open-encoder gauge). */
abstract class BaseEncoder implements AudioEncoder {
  readonly contentType: string;
  private closed = false;
  constructor(readonly format: EncodeFormat, readonly sampleRate: number) {
    this.contentType = CONTENT_TYPES[format];
    openEncoders.inc({ format });
  }
  protected abstract encode(samples: Int16Array): Uint8Array;
  protected abstract finish(): Uint8Array;
  protected abstract free(): void;

  write(pcm: Int16Array | Float32Array): Uint8Array {
    if (this.closed) throw new Error(`${this.format} encoder is closed`);
    const out = this.encode(toInt16(pcm));
    encodedBytes.inc({ format: this.format }, out.length);
    return out;
  }
  end(): Uint8Array {
    if (this.closed) throw new Error(`${this.format} encoder is closed`);
    try {
      const out = this.finish();
      encodedBytes.inc({ format: this.format }, out.length);
      return out;
    } finally {
      this.close();
    }
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    openEncoders.dec({ format: this.format });
    this.free();
  }
}

class PcmEncoder extends BaseEncoder {
  private started = false;
  constructor(format: "wav" | "pcm", sampleRate: number, private readonly totalSamples?: number) {
    super(format, sampleRate);
  }
  protected encode(samples: Int16Array): Uint8Array {
    const body = int16LeBytes(samples);
    if (this.started || this.format === "pcm") return body;
    this.started = true;
    const size = this.totalSamples === undefined ? null : this.totalSamples * 2;
    return concatBytes([wavHeader(this.sampleRate, size), body]);
  }
  protected finish(): Uint8Array {
    return this.started || this.format === "pcm" ? EMPTY : this.encode(new Int16Array(0));
  }
  protected free(): void {}
}

class Mp3StreamEncoder extends BaseEncoder {
  private readonly lame: Mp3Encoder;
  constructor(sampleRate: number, bitrate?: number) {
    super("mp3", sampleRate);
    const floor = MP3_MIN_KBPS[sampleRate];
    const kbps = Math.max(floor, Math.round((bitrate ?? MP3_DEFAULT_KBPS[sampleRate] * 1000) / 1000));
    this.lame = new Mp3Encoder(1, sampleRate, kbps);
  }
  private bytes(chunk: Int8Array | Uint8Array): Uint8Array {
    return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length).slice();
  }
  protected encode(samples: Int16Array): Uint8Array {
    // lamejs encodes 1152-sample blocks; feeding large arrays in one call is fine.
    return samples.length === 0 ? EMPTY : this.bytes(this.lame.encodeBuffer(samples));
  }
  protected finish(): Uint8Array {
    return this.bytes(this.lame.flush());
  }
  protected free(): void {}
}

class OggOpusEncoder extends BaseEncoder {
  private readonly opus: OpusFrameEncoder;
  private readonly frame: number;
  private readonly pages: OggPageWriter;
  private readonly scale: number;
  private carry = new Int16Array(0);
  private held: { packet: Uint8Array; granule: bigint } | null = null;
  private samplesIn = 0;
  private framesOut = 0;
  private headersSent = false;

  constructor(sampleRate: number, bitrate?: number, complexity?: number) {
    super("opus", sampleRate);
    this.frame = sampleRate / 50; // 20 ms
    this.scale = 48000 / sampleRate;
    this.pages = new OggPageWriter(crypto.getRandomValues(new Uint32Array(1))[0]);
    try {
      this.opus = new OpusFrameEncoder(sampleRate as 48000, { bitrate, complexity });
    } catch (e) {
      openEncoders.dec({ format: "opus" });
      throw e;
    }
  }

  private headers(): Uint8Array[] {
    const head = new Uint8Array(19);
    const dv = new DataView(head.buffer);
    head.set(new TextEncoder().encode("OpusHead"));
    head[8] = 1; // version
    head[9] = 1; // channels
    dv.setUint16(10, OPUS_PRE_SKIP, true);
    dv.setUint32(12, this.sampleRate, true);
    dv.setInt16(16, 0, true); // output gain
    head[18] = 0; // mapping family: mono/stereo
    const vendor = new TextEncoder().encode("parley opusscript");
    const tags = new Uint8Array(8 + 4 + vendor.length + 4);
    const tv = new DataView(tags.buffer);
    tags.set(new TextEncoder().encode("OpusTags"));
    tv.setUint32(8, vendor.length, true);
    tags.set(vendor, 12);
    tv.setUint32(12 + vendor.length, 0, true);
    const out: Uint8Array[] = [];
    this.pages.addPacket(head, 0n);
    out.push(this.pages.flush()!);
    this.pages.addPacket(tags, 0n);
    out.push(this.pages.flush()!);
    return out;
  }

  private encodeFrames(samples: Int16Array, out: Uint8Array[]): void {
    let buf = samples;
    if (this.carry.length > 0) {
      buf = new Int16Array(this.carry.length + samples.length);
      buf.set(this.carry);
      buf.set(samples, this.carry.length);
    }
    let off = 0;
    for (; off + this.frame <= buf.length; off += this.frame) {
      const packet = this.opus.encode(buf.subarray(off, off + this.frame));
      this.framesOut++;
      // Granules count decoded samples at 48 kHz, the pre-skip included; only the last page is trimmed.
      const granule = BigInt(this.framesOut * this.frame * this.scale);
      // One packet is always held back, so the end-of-stream page carries audio and the trimmed granule.
      if (this.held) {
        const page = this.pages.addPacket(this.held.packet, this.held.granule);
        if (page) out.push(page);
      }
      this.held = { packet, granule };
    }
    this.carry = buf.slice(off);
  }

  protected encode(samples: Int16Array): Uint8Array {
    const out: Uint8Array[] = [];
    if (!this.headersSent) {
      this.headersSent = true;
      out.push(...this.headers());
    }
    this.samplesIn += samples.length;
    this.encodeFrames(samples, out);
    const page = this.pages.flush();
    if (page) out.push(page);
    return out.length ? concatBytes(out) : EMPTY;
  }

  protected finish(): Uint8Array {
    const out: Uint8Array[] = [];
    if (!this.headersSent) {
      this.headersSent = true;
      out.push(...this.headers());
    }
    // Pad with silence until the encoder's look-ahead has passed the last real sample (otherwise its final
    // 6.5 ms never comes out); the end granule trims the padding off again.
    const needed = this.samplesIn + Math.ceil(OPUS_PRE_SKIP / this.scale);
    const encoded = this.framesOut * this.frame + this.carry.length;
    const pad = Math.max(0, needed - encoded);
    const toFrame = (this.carry.length + pad) % this.frame;
    this.encodeFrames(new Int16Array(pad + (toFrame ? this.frame - toFrame : 0)), out);
    const held = this.held!;
    const page = this.pages.addPacket(
      held.packet,
      BigInt(OPUS_PRE_SKIP + Math.round(this.samplesIn * this.scale)),
    );
    if (page) out.push(page);
    out.push(this.pages.flush(true)!);
    return concatBytes(out);
  }

  protected free(): void {
    this.opus.close();
  }
}

let flacReady: Promise<void> | null = null;
function flacLoaded(): Promise<void> {
  flacReady ??= Flac.isReady()
    ? Promise.resolve()
    : new Promise<void>((resolve) => Flac.on("ready", () => resolve()));
  return flacReady;
}

class FlacEncoder extends BaseEncoder {
  private readonly id: number;
  private chunks: Uint8Array[] = [];

  constructor(sampleRate: number, level: number, totalSamples: number) {
    super("flac", sampleRate);
    const id = Flac.create_libflac_encoder(sampleRate, 1, 16, level as never, totalSamples, false, 0);
    if (!id) throw new Error("libFLAC: encoder could not be created");
    this.id = id;
    const status = Flac.init_encoder_stream(id, (data: Uint8Array) => {
      this.chunks.push(data.slice());
    });
    if (status !== 0) {
      Flac.FLAC__stream_encoder_delete(id);
      throw new Error(`libFLAC: encoder init failed (status ${status})`);
    }
  }
  private drain(): Uint8Array {
    const out = this.chunks.length ? concatBytes(this.chunks) : EMPTY;
    this.chunks = [];
    return out;
  }
  protected encode(samples: Int16Array): Uint8Array {
    if (
      samples.length > 0 &&
      !Flac.FLAC__stream_encoder_process_interleaved(this.id, Int32Array.from(samples), samples.length)
    ) {
      throw new Error("libFLAC: encoding failed");
    }
    return this.drain();
  }
  protected finish(): Uint8Array {
    Flac.FLAC__stream_encoder_finish(this.id);
    return this.drain();
  }
  protected free(): void {
    Flac.FLAC__stream_encoder_delete(this.id);
  }
}

async function makeEncoder(
  format: EncodeFormat,
  sampleRate: number,
  options: EncodeOptions,
  totalSamples?: number,
): Promise<AudioEncoder> {
  switch (format) {
    case "wav":
    case "pcm":
      checkRate(format, sampleRate);
      return new PcmEncoder(format, sampleRate, totalSamples);
    case "mp3":
      checkRate(format, sampleRate, MP3_RATES);
      return new Mp3StreamEncoder(sampleRate, options.bitrate);
    case "opus":
      checkRate(format, sampleRate, OPUS_RATES);
      return new OggOpusEncoder(sampleRate, options.bitrate, options.complexity);
    case "flac":
      checkRate(format, sampleRate);
      await flacLoaded();
      return new FlacEncoder(sampleRate, options.flacLevel ?? 5, totalSamples ?? 0);
    default:
      throw new RangeError(`unknown audio format ${JSON.stringify(format)}`);
  }
}

/** A streaming encoder: `write()` as audio arrives, `end()` once; `close()` if abandoned. */
export function createEncoder(
  format: EncodeFormat,
  sampleRate: number,
  options: EncodeOptions = {},
): Promise<AudioEncoder> {
  return makeEncoder(format, sampleRate, options);
}

/** Encode a whole clip (sizes and sample counts in the headers are exact). */
export async function encodeAudio(
  pcm: Int16Array | Float32Array,
  sampleRate: number,
  format: EncodeFormat,
  options: EncodeOptions = {},
): Promise<Uint8Array> {
  const enc = await makeEncoder(format, sampleRate, options, pcm.length);
  try {
    const body = enc.write(pcm);
    return concatBytes([body, enc.end()]);
  } finally {
    enc.close();
  }
}
