/**
 * Sets the ctc low-confidence threshold (RecognizerConfig.minConfidence) on DEVELOPMENT material, never on the
 * evaluation set: espeak-ng speech of the sentences below (not in models/eval) in several voices, clean and with
 * sox noise at 5 dB SNR, against non-speech the VAD may pass (sox white / pink / brown noise, hum, clicks).
 * The filter drops a result when every word is below the threshold, so the statistic per result is its best
 * word's confidence: the threshold must sit below (nearly) every speech result and above most non-speech ones.
 *
 *   deno run -A bench/confidence_threshold.ts
 */
import { loadCtcRecognizer } from "../origin/asr/ctc_decoder.ts";
import { EspeakEngine } from "../origin/tts/espeak_engine.ts";
import { int16ToFloat, resampleAll } from "../lib/audio/resampler.ts";
import { readWav } from "../origin/pipeline/wav.ts";

const DEV_SENTENCES = [
  "please turn on the kitchen lights and open the window",
  "we will meet at the station before the train leaves",
  "she bought three apples and a loaf of bread",
  "could you call me back after lunch",
  "the meeting has been moved to thursday afternoon",
  "i think it is going to rain later today",
];
const VOICES = ["en-us", "en", "en-029", "en-gb-scotland"];
const NOISES = [
  ["whitenoise", "0.3"],
  ["pinknoise", "0.5"],
  ["brownnoise", "0.8"],
  ["sine", "0.3", "50"],
  ["square", "0.2", "100"],
  ["pinknoise", "0.05"],
] as const;

/** `sox -n` synthesis (repeatable), 16 kHz mono 16-bit: `synth <seconds> <effect args…>`. */
async function soxSynth(path: string, seconds: number, effect: string[]): Promise<Float32Array> {
  const args = ["-R", "-n", "-r", "16000", "-b", "16", "-c", "1", path, "synth", `${seconds}`, ...effect];
  const r = await new Deno.Command("sox", { args, stderr: "piped" }).output();
  if (!r.success) throw new Error(new TextDecoder().decode(r.stderr));
  return int16ToFloat(readWav(path).samples);
}

const dir = await Deno.makeTempDir({ prefix: "parley-conf-" });
const rec = await loadCtcRecognizer(new URL("../models/parley-asr-en", import.meta.url).pathname);
const espeak = await EspeakEngine.load("en-us");
const best = async (pcm: Float32Array) => {
  const r = await rec.transcribe(pcm);
  return { text: r.hypotheses[0]?.text ?? "", best: Math.max(0, ...r.words.map((w) => w.confidence ?? 0)) };
};
const speech: number[] = [], nonSpeech: Array<{ what: string; text: string; best: number }> = [];
try {
  for (const [i, text] of DEV_SENTENCES.entries()) {
    for (const voice of VOICES) {
      const syn = await espeak.synthesize(text, voice);
      const pcm = resampleAll(int16ToFloat(syn.pcm as Int16Array), syn.sampleRate, 16000);
      speech.push((await best(pcm)).best);
      // 5 dB SNR pink noise (RMS-based)
      const n = await soxSynth(`${dir}/n${i}.wav`, pcm.length / 16000, ["pinknoise"]);
      const rms = (x: Float32Array) => Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
      const g = rms(pcm) / (rms(n) * Math.pow(10, 5 / 20));
      speech.push((await best(pcm.map((v, k) => v + g * (n[k] ?? 0)))).best);
    }
  }
  for (const [k, [kind, vol, freq]] of NOISES.entries()) {
    const path = `${dir}/junk${k}.wav`;
    const x = await soxSynth(path, 1.5, [kind, ...(freq ? [freq] : []), "vol", vol]);
    const r = await best(x);
    nonSpeech.push({ what: `${kind}${freq ? ` ${freq} Hz` : ""} vol ${vol}`, ...r });
  }
} finally {
  await rec.dispose();
  await espeak.close();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
speech.sort((a, b) => a - b);
console.log(
  `speech results (${speech.length}, clean + 5 dB): best-word confidence min ${speech[0].toFixed(3)}, ` +
    `p1 ${speech[Math.floor(speech.length * 0.01)].toFixed(3)}, p5 ${
      speech[Math.floor(speech.length * 0.05)].toFixed(3)
    }, ` +
    `median ${speech[speech.length >> 1].toFixed(3)}`,
);
console.log("non-speech:");
for (const n of nonSpeech) console.log(`  ${n.what}: "${n.text}" best-word confidence ${n.best.toFixed(3)}`);
