/**
 * Stored job audio: how a TTS chunk's PCM16 is kept in the database and turned back into PCM16 on the way out.
 *
 * - `pcm`: PCM16 little-endian at the job's rate, as synthesized (rows written before compression existed).
 * - `opus`: one Ogg Opus stream per chunk (./encode.ts), encoded at 48 kHz (the job's rate is resampled up with
 *   ./resampler.ts, and back down on decode). Opus is lossy, so the exact PCM cannot come back; what does come
 *   back exactly is the length: the sample count at the job's rate is stored beside the bytes, and the decoded
 *   audio is cut or zero-padded to it, so a chunk's audio lines up with its word and phoneme timings (which are
 *   in milliseconds from the chunk start, untouched by the codec) and a WAV of N chunks is exactly as long as
 *   the PCM would have been. The Ogg stream's pre-skip and end granule are honoured by the decoder
 *   (ogg-opus-decoder), the resampler's group delay is removed here.
 *
 * Both directions work in slices of under a second of audio and yield to the event loop between slices, so a
 * 20-second chunk never holds an origin's or edge's loop for the whole encode or decode.
 */
import { concatBytes, int16LeBytes } from "./bytes.ts";
import { OggOpusDecoder } from "ogg-opus-decoder";
import { createEncoder } from "./encode.ts";
import { floatToInt16, StreamingResampler } from "./resampler.ts";

export type StoredCodec = "pcm" | "opus";
export const STORED_CODECS: readonly StoredCodec[] = ["pcm", "opus"];

/** Opus' native rate: the Ogg Opus decoder always outputs it. */
export const OPUS_RATE = 48000;
/** Default Opus bit rate for stored job speech (mono). */
export const DEFAULT_STORED_OPUS_BITRATE = 24000;
/**
 * Opus encoder complexity for stored job audio: below libopus' default of 10, because encoding runs on the
 * origin's event loop for every chunk and 10 costs more CPU than synthesizing the speech; the cost and the
 * quality checks are in docs/benchmarks.md and tests/tts_audio_storage_test.ts.
 */
export const STORED_OPUS_COMPLEXITY = 5;

export interface StoredAudio {
  codec: StoredCodec;
  bytes: Uint8Array;
  /** Samples at the job's rate the bytes decode to (PCM: bytes / 2). */
  samples: number;
}

/** Samples per slice between event-loop yields (a quarter second at 48 kHz). */
const SLICE = 12000;

const yieldLoop = () => new Promise<void>((r) => setTimeout(r, 0));

function le16Samples(bytes: Uint8Array): Int16Array {
  const n = bytes.length >> 1;
  const out = new Int16Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) out[i] = dv.getInt16(i * 2, true);
  return out;
}

/**
 * Compress one chunk's PCM16 (little-endian bytes at `sampleRate`) for storage. `pcm` returns the bytes
 * unchanged. An empty chunk is stored as empty bytes whatever the codec.
 */
export async function encodeStoredAudio(
  pcmBytes: Uint8Array,
  sampleRate: number,
  codec: StoredCodec,
  opts: { bitrate?: number } = {},
): Promise<StoredAudio> {
  const samples = pcmBytes.length >> 1;
  if (codec === "pcm" || samples === 0) {
    return { codec: samples === 0 ? "pcm" : codec, bytes: pcmBytes, samples };
  }
  const input = le16Samples(pcmBytes);
  const resampler = sampleRate === OPUS_RATE ? null : new StreamingResampler(sampleRate, OPUS_RATE);
  const enc = await createEncoder("opus", OPUS_RATE, {
    bitrate: opts.bitrate ?? DEFAULT_STORED_OPUS_BITRATE,
    complexity: STORED_OPUS_COMPLEXITY,
  });
  try {
    const parts: Uint8Array[] = [];
    // The resampler delays its output by `delayOut` samples: drop that many from the front and flush its tail
    // so the 48 kHz signal starts at the chunk's first sample and has exactly round(n · 48000 / rate) samples.
    let skip = resampler ? Math.round(resampler.delayOut) : 0;
    let left = Math.round(samples * OPUS_RATE / sampleRate);
    const push = (x: Float32Array) => {
      const s = Math.min(skip, x.length);
      skip -= s;
      const take = x.subarray(s, s + Math.min(left, x.length - s));
      left -= take.length;
      if (take.length) parts.push(enc.write(floatToInt16(take)));
    };
    const step = resampler ? Math.ceil(SLICE * sampleRate / OPUS_RATE) : SLICE;
    for (let off = 0; off < input.length; off += step) {
      const slice = input.subarray(off, off + step);
      push(resampler ? resampler.process(slice) : Float32Array.from(slice, (v) => v / 32768));
      await yieldLoop();
    }
    while (resampler && left > 0) {
      const tail = resampler.flush();
      if (tail.length === 0) break;
      push(tail);
    }
    if (left > 0) push(new Float32Array(left));
    parts.push(enc.end());
    return { codec, bytes: concatBytes(parts), samples };
  } finally {
    enc.close();
  }
}

/** Stored audio that cannot be decoded (corrupt bytes, unknown codec): a server fault, never the client's. */
export class StoredAudioError extends Error {
  override name = "StoredAudioError";
}

/**
 * Turns stored chunks back into PCM16 little-endian bytes at the job's rate. Holds one Ogg Opus decoder (WASM)
 * for its life, created on the first Opus chunk; `close()` frees it (idempotent).
 */
export class StoredAudioDecoder {
  #opus: OggOpusDecoder | null = null;
  #closed = false;

  async decode(
    stored: { codec: StoredCodec | string; bytes: Uint8Array; samples: number | null },
    sampleRate: number,
  ): Promise<Uint8Array> {
    if (this.#closed) throw new Error("stored audio decoder is closed");
    if (stored.codec === "pcm") return stored.bytes;
    if (stored.codec !== "opus") {
      throw new StoredAudioError(`unknown stored audio codec ${JSON.stringify(stored.codec)}`);
    }
    const want = stored.samples ?? 0;
    if (want === 0 || stored.bytes.length === 0) return new Uint8Array(0);
    if (!this.#opus) {
      this.#opus = new OggOpusDecoder();
      await this.#opus.ready;
    }
    const opus = this.#opus;
    const resampler = sampleRate === OPUS_RATE ? null : new StreamingResampler(OPUS_RATE, sampleRate);
    const out = new Int16Array(want);
    let at = 0;
    let skip = resampler ? Math.round(resampler.delayOut) : 0;
    const push = (x: Float32Array) => {
      const s = Math.min(skip, x.length);
      skip -= s;
      const take = x.subarray(s, s + Math.min(want - at, x.length - s));
      out.set(floatToInt16(take), at);
      at += take.length;
    };
    // Under a second of Opus per decode call at the stored bit rates.
    const sliceBytes = 2 * 1024;
    try {
      for (let off = 0; off < stored.bytes.length; off += sliceBytes) {
        const r = await opus.decode(stored.bytes.subarray(off, off + sliceBytes));
        if (r.errors.length) {
          throw new StoredAudioError(`stored Opus audio is corrupt: ${r.errors[0].message}`);
        }
        if (r.samplesDecoded) {
          const mono = r.channelData[0].subarray(0, r.samplesDecoded);
          push(resampler ? resampler.process(mono) : mono);
        }
        await yieldLoop();
      }
    } catch (e) {
      await opus.reset(); // the next chunk starts a fresh Ogg stream
      throw e instanceof StoredAudioError ? e : new StoredAudioError(`stored Opus audio: ${e}`);
    }
    const rest = await opus.flush();
    if (rest.samplesDecoded) {
      const mono = rest.channelData[0].subarray(0, rest.samplesDecoded);
      push(resampler ? resampler.process(mono) : mono);
    }
    // The resampler's tail: at most its delay plus one flush is still owed.
    for (let owed = skip + (resampler?.delayOut ?? 0) + 64; resampler && at < want && owed > 0;) {
      const tail = resampler.flush();
      owed -= tail.length;
      push(tail);
    }
    // Anything still missing (the codec's last few samples) stays zero: the length is the stored one.
    return int16LeBytes(out);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#opus?.free();
    this.#opus = null;
  }
}
