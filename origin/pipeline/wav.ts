/** Minimal PCM16 WAV reader/writer (mono or interleaved; tests, fixtures, benchmarks). */
import { wavHeader } from "../../protocol/wav.ts";

export interface Wav {
  sampleRate: number;
  channels: number;
  /** Mono (first channel) Int16 samples. */
  samples: Int16Array;
}

export function parseWav(bytes: Uint8Array): Wav {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (o: number) => String.fromCharCode(...bytes.subarray(o, o + 4));
  if (tag(0) !== "RIFF" || tag(8) !== "WAVE") throw new Error("not a RIFF/WAVE file");
  let off = 12, sampleRate = 0, channels = 0, bits = 0;
  while (off + 8 <= bytes.length) {
    const id = tag(off), size = dv.getUint32(off + 4, true);
    if (id === "fmt ") {
      const format = dv.getUint16(off + 8, true);
      channels = dv.getUint16(off + 10, true);
      sampleRate = dv.getUint32(off + 12, true);
      bits = dv.getUint16(off + 22, true);
      if ((format !== 1 && format !== 0xfffe) || bits !== 16) throw new Error("only PCM16 WAV is supported");
    } else if (id === "data") {
      const n = Math.floor(Math.min(size, bytes.length - off - 8) / 2 / channels);
      const samples = new Int16Array(n);
      for (let i = 0; i < n; i++) samples[i] = dv.getInt16(off + 8 + i * 2 * channels, true);
      return { sampleRate, channels, samples };
    }
    off += 8 + size + (size & 1);
  }
  throw new Error("WAV has no data chunk");
}

export function readWav(path: string | URL): Wav {
  return parseWav(Deno.readFileSync(path));
}

export function encodeWav(samples: Int16Array, sampleRate: number): Uint8Array {
  const out = new Uint8Array(44 + samples.length * 2);
  out.set(wavHeader(sampleRate, samples.length * 2));
  const dv = new DataView(out.buffer);
  for (let i = 0; i < samples.length; i++) dv.setInt16(44 + i * 2, samples[i], true);
  return out;
}
