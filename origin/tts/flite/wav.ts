/** Reads the mono 16-bit PCM WAV that flite writes (RIFF, `fmt ` + `data` chunks). */
import { SynthesisError } from "./errors.ts";

export function parseWav(bytes: Uint8Array): { pcm: Int16Array; sampleRate: number } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (o: number) => String.fromCharCode(...bytes.subarray(o, o + 4));
  if (bytes.length < 12 || tag(0) !== "RIFF" || tag(8) !== "WAVE") {
    throw new SynthesisError("flite wrote no WAV");
  }
  let sampleRate = 0, channels = 0, bits = 0;
  for (let o = 12; o + 8 <= bytes.length;) {
    const id = tag(o), size = dv.getUint32(o + 4, true), body = o + 8;
    if (id === "fmt ") {
      channels = dv.getUint16(body + 2, true);
      sampleRate = dv.getUint32(body + 4, true);
      bits = dv.getUint16(body + 14, true);
    } else if (id === "data") {
      if (channels !== 1 || bits !== 16) {
        throw new SynthesisError(`unexpected WAV format ${channels}ch ${bits}bit`);
      }
      const n = Math.floor(Math.min(size, bytes.length - body) / 2);
      const pcm = new Int16Array(n);
      for (let i = 0; i < n; i++) pcm[i] = dv.getInt16(body + 2 * i, true);
      return { pcm, sampleRate };
    }
    o = body + size + (size & 1);
  }
  throw new SynthesisError("flite WAV has no data chunk");
}
