/**
 * TTS job audio storage: bytes per audio second as stored in the database, PCM (as synthesized) against Ogg
 * Opus (lib/audio/stored_audio.ts), on real job chunks: a text is split like a job (protocol/tts_text.ts) and
 * synthesized by the configured engine through the job synthesizer; each chunk is stored both ways. Also
 * encode/decode CPU (main thread) per audio second, and the storage a 200,000-character job would take at the measured
 * characters per audio second.
 *   deno run -A --unstable-worker-options bench/tts_storage.ts [--chars 3000] [--bitrate 24000]
 */
import { defaultVoiceOf } from "../protocol/voices.ts";
import { chunkText } from "../protocol/tts_text.ts";
import { PoolSynthesizer } from "../origin/tts_jobs/synth.ts";
import { ttsConfig } from "../origin/engine_config.ts";
import { parseConfig } from "../lib/config.ts";
import { configureLogging } from "../lib/log.ts";
import { encodeStoredAudio, StoredAudioDecoder } from "../lib/audio/stored_audio.ts";
import { mainThreadCpuSeconds, pipelineSentences } from "./pipeline_util.ts";

configureLogging({ level: "warn" });
const arg = (name: string, dflt: string) => {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : dflt;
};
const wantChars = Number(arg("chars", "3000"));
const bitrate = Number(arg("bitrate", "24000"));

let text = "";
for (let n = 20; text.length < wantChars; n *= 2) text = pipelineSentences(n).join(" ");
text = text.slice(0, wantChars);
const chunks = chunkText(text);
const config = parseConfig({});
const synth = await PoolSynthesizer.create({ workers: 1, tts: ttsConfig(config) });
const dec = new StoredAudioDecoder();
let pcmBytes = 0, opusBytes = 0, seconds = 0, encMs = 0, decMs = 0, rate = 0;
try {
  for (const chunk of chunks) {
    // espeak at 22.05 kHz: the engine and rate the stored-PCM baseline was measured with
    const a = await synth.synthesize(chunk, defaultVoiceOf("espeak"), "espeak", 22050);
    rate = a.sampleRate;
    pcmBytes += a.pcm.length;
    seconds += a.pcm.length / 2 / a.sampleRate;
    // CPU of this (main) thread, not wall time: the machine is shared, and encode/decode run on the event loop.
    let t = mainThreadCpuSeconds();
    const opus = await encodeStoredAudio(a.pcm, a.sampleRate, "opus", { bitrate });
    encMs += (mainThreadCpuSeconds() - t) * 1000;
    opusBytes += opus.bytes.length;
    t = mainThreadCpuSeconds();
    const back = await dec.decode(opus, a.sampleRate);
    decMs += (mainThreadCpuSeconds() - t) * 1000;
    if (back.length !== a.pcm.length) throw new Error(`length ${back.length} != ${a.pcm.length}`);
  }
} finally {
  dec.close();
  await synth.close();
}
const charsPerSecond = text.length / seconds;
const est = (bytesPerSecond: number) => (200_000 / charsPerSecond) * bytesPerSecond / 1e6;
const pcmPerS = pcmBytes / seconds, opusPerS = opusBytes / seconds;
console.log(JSON.stringify({
  engine: config.TTS_ENGINE,
  chars: text.length,
  chunks: chunks.length,
  audio_seconds: +seconds.toFixed(1),
  sample_rate: rate,
  opus_bitrate: bitrate,
  pcm_bytes_per_audio_second: Math.round(pcmPerS),
  opus_bytes_per_audio_second: Math.round(opusPerS),
  ratio: +(pcmPerS / opusPerS).toFixed(1),
  encode_cpu_ms_per_audio_second: +(encMs / seconds).toFixed(1),
  decode_cpu_ms_per_audio_second: +(decMs / seconds).toFixed(1),
  chars_per_audio_second: +charsPerSecond.toFixed(1),
  job_200k_chars_mb: { pcm: Math.round(est(pcmPerS)), opus: Math.round(est(opusPerS)) },
}));
