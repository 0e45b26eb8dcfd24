/**
 * The WAV container Parley speaks on the wire (TTS job audio) and writes in tools: PCM16 mono, 44-byte header.
 * Shared by the edge (streams job audio) and the origin/tests (encode, parse).
 */

/** A 44-byte PCM16 mono WAV header; `dataBytes` null = open-ended (streaming: sizes set to the maximum). */
export function wavHeader(sampleRate: number, dataBytes: number | null): Uint8Array {
  const h = new Uint8Array(44);
  const dv = new DataView(h.buffer);
  const tag = (o: number, s: string) => [...s].forEach((ch, i) => (h[o + i] = ch.charCodeAt(0)));
  const data = dataBytes ?? 0xffffffff - 36;
  tag(0, "RIFF");
  dv.setUint32(4, dataBytes === null ? 0xffffffff : 36 + data, true);
  tag(8, "WAVE");
  tag(12, "fmt ");
  dv.setUint32(16, 16, true);
  dv.setUint16(20, 1, true); // PCM
  dv.setUint16(22, 1, true); // mono
  dv.setUint32(24, sampleRate, true);
  dv.setUint32(28, sampleRate * 2, true);
  dv.setUint16(32, 2, true);
  dv.setUint16(34, 16, true);
  tag(36, "data");
  dv.setUint32(40, data, true);
  return h;
}
