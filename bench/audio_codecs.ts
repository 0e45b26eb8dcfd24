/**
 * Bytes per audio second and encode/decode speed of each job-audio / speech-response format, on espeak-ng speech
 * at 24 kHz and 48 kHz mono (the sizes that decide how job audio is stored).
 */
import { encodeAudio, type EncodeFormat, type EncodeOptions } from "../lib/audio/encode.ts";
import { decodeAudio } from "../lib/audio/decode.ts";
import { speech } from "../lib/audio/test_audio.ts";

const variants: { label: string; format: EncodeFormat; options?: EncodeOptions }[] = [
  { label: "pcm16 (wav)", format: "wav" },
  { label: "flac (level 5)", format: "flac" },
  { label: "mp3 (default rate)", format: "mp3" },
  { label: "opus 32 kbit/s", format: "opus" },
  { label: "opus 24 kbit/s", format: "opus", options: { bitrate: 24000 } },
  { label: "opus 16 kbit/s", format: "opus", options: { bitrate: 16000 } },
];

console.log(
  "| format | rate | bytes per audio second | vs PCM16 | encode × real time | decode × real time |",
);
console.log("| --- | --- | --- | --- | --- | --- |");
for (const rate of [24000, 48000]) {
  // ~10 s of speech: the same sentence three times over, with pauses, like a long TTS job.
  const one = await speech(rate);
  const gap = new Float32Array(rate / 2);
  const pcm = new Float32Array((one.length + gap.length) * 3);
  for (let i = 0; i < 3; i++) pcm.set(one, i * (one.length + gap.length));
  const seconds = pcm.length / rate;
  const pcmBytes = pcm.length * 2 / seconds;
  for (const v of variants) {
    await decodeAudio(await encodeAudio(pcm, rate, v.format, v.options)); // warm-up (JIT, WASM compile)
    const t0 = performance.now();
    const bytes = await encodeAudio(pcm, rate, v.format, v.options);
    const t1 = performance.now();
    await decodeAudio(bytes);
    const t2 = performance.now();
    const bps = bytes.length / seconds;
    console.log(
      `| ${v.label} | ${rate / 1000} kHz | ${Math.round(bps)} | ${(100 * bps / pcmBytes).toFixed(1)} % | ${
        Math.round(seconds * 1000 / (t1 - t0))
      } | ${Math.round(seconds * 1000 / (t2 - t1))} |`,
    );
  }
}
