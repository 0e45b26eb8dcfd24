/**
 * Sets an engine's low-confidence threshold (RecognizerConfig.minConfidence) on DEVELOPMENT material, never on
 * an evaluation set, against non-speech the VAD may pass (sox white / pink / brown noise, hum, buzz).
 *  - ctc: espeak-ng speech of the sentences below (not in models/eval) in several voices.
 *  - sphinx and moonshine: the human recordings of pocketsphinx-testdata that bench/human_corpus.ts does NOT
 *    use (goforward.raw, numbers.raw, something.raw) and flite's 16 kHz voices (rms, slt, awb) speaking the
 *    sentences below; non-speech adds alsa-utils' Noise.wav (left out of the human corpus as not speech).
 *    Moonshine has no word confidences: its statistic is the result's confidence.
 * Speech is scored clean and with pink noise at 5 dB SNR. The filter drops a result when every word is below
 * the threshold, so the statistic per result is its best word's confidence: the threshold must sit below
 * (nearly) every speech result and above most non-speech ones.
 *
 *   deno run -A bench/confidence_threshold.ts [--engine ctc|sphinx|moonshine]
 */
import { loadCtcRecognizer } from "../origin/asr/ctc_decoder.ts";
import { SphinxDecoder } from "../origin/asr/sphinx/sphinx_decoder.ts";
import { sphinxConfigFromEnv } from "../origin/asr/sphinx/sphinx_detect.ts";
import { fliteSpeech, SPHINX_TESTDATA } from "../origin/asr/sphinx/sphinx_testdata.ts";
import { toInt16 } from "../origin/asr/sphinx/pcm.ts";
import { EspeakEngine } from "../origin/tts/espeak_engine.ts";
import { int16ToFloat, resampleAll } from "../lib/audio/resampler.ts";
import { readWav } from "../origin/pipeline/wav.ts";
import { loadBundledMoonshine } from "../origin/asr/moonshine/moonshine_engine.ts";

const ENGINE = Deno.args.includes("--engine") ? Deno.args[Deno.args.indexOf("--engine") + 1] : "ctc";
if (!["ctc", "sphinx", "moonshine"].includes(ENGINE)) {
  throw new Error(`--engine ctc|sphinx|moonshine, got ${ENGINE}`);
}

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
type Scored = { text: string; best: number };
let score: (pcm: Float32Array) => Promise<Scored>;
let closeScorer: () => Promise<void>;
if (ENGINE === "ctc") {
  const rec = await loadCtcRecognizer(new URL("../models/parley-asr-en", import.meta.url).pathname);
  score = async (pcm) => {
    const r = await rec.transcribe(pcm);
    return { text: r.hypotheses[0]?.text ?? "", best: Math.max(0, ...r.words.map((w) => w.confidence ?? 0)) };
  };
  closeScorer = () => rec.dispose();
} else if (ENGINE === "moonshine") {
  const m = await loadBundledMoonshine();
  score = async (pcm) => {
    const r = await m.transcribe(pcm);
    return { text: r.alternatives[0]?.text ?? "", best: r.alternatives[0]?.text ? r.confidence ?? 0 : 0 };
  };
  closeScorer = () => m.dispose();
} else {
  // One decoder reused in order, as a worker's pool reuses them (the configured search: `live` by default).
  const d = SphinxDecoder.open(sphinxConfigFromEnv());
  score = (pcm) => {
    d.start();
    const x = toInt16(pcm);
    for (let i = 0; i < x.length; i += 1600) d.process(x.subarray(i, i + 1600));
    const r = d.finish();
    return Promise.resolve({ text: r.text, best: Math.max(0, ...r.words.map((w) => w.confidence ?? 0)) });
  };
  closeScorer = () => Promise.resolve(d.close());
}
const rms = (x: Float32Array) => Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
const speech: number[] = [], nonSpeech: Array<{ what: string } & Scored> = [];
/** Scores a speech recording clean and with pink noise at 5 dB SNR (RMS-based); empty results count as 0. */
const scoreSpeech = async (pcm: Float32Array, tag: string) => {
  speech.push((await score(pcm)).best);
  const n = await soxSynth(`${dir}/n-${tag}.wav`, pcm.length / 16000, ["pinknoise"]);
  const g = rms(pcm) / (rms(n) * Math.pow(10, 5 / 20));
  speech.push((await score(pcm.map((v, k) => v + g * (n[k] ?? 0)))).best);
};
try {
  if (ENGINE === "ctc") {
    const espeak = await EspeakEngine.load("en-us");
    try {
      for (const [i, text] of DEV_SENTENCES.entries()) {
        for (const voice of VOICES) {
          const syn = await espeak.synthesize(text, voice);
          await scoreSpeech(
            resampleAll(int16ToFloat(syn.pcm as Int16Array), syn.sampleRate, 16000),
            `${i}-${voice}`,
          );
        }
      }
    } finally {
      await espeak.close();
    }
  } else {
    for (const f of ["goforward", "numbers", "something"]) {
      const raw = await Deno.readFile(`${SPHINX_TESTDATA}/${f}.raw`);
      await scoreSpeech(int16ToFloat(new Int16Array(raw.buffer, 0, raw.byteLength >> 1)), f);
    }
    for (const [i, text] of DEV_SENTENCES.entries()) {
      for (const voice of ["rms", "slt", "awb"]) {
        await scoreSpeech(int16ToFloat(await fliteSpeech(text, voice)), `${i}-${voice}`);
      }
    }
  }
  for (const [k, [kind, vol, freq]] of NOISES.entries()) {
    const path = `${dir}/junk${k}.wav`;
    const x = await soxSynth(path, 1.5, [kind, ...(freq ? [freq] : []), "vol", vol]);
    nonSpeech.push({ what: `${kind}${freq ? ` ${freq} Hz` : ""} vol ${vol}`, ...(await score(x)) });
  }
  if (ENGINE !== "ctc") {
    const out = `${dir}/alsa-noise.wav`;
    const r = await new Deno.Command("sox", {
      args: ["/usr/share/sounds/alsa/Noise.wav", "-r", "16000", "-c", "1", "-b", "16", out],
    }).output();
    if (r.success) {
      nonSpeech.push({ what: "alsa-utils Noise.wav", ...(await score(int16ToFloat(readWav(out).samples))) });
    }
  }
} finally {
  await closeScorer();
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
// sphinx's rule, fixed before its run: the largest 0.05 step that keeps at least 95 % of the speech results that
// have words (a result without words has nothing to filter); then see what it does to the non-speech results.
const worded = speech.filter((b) => b > 0);
const rule = Math.floor(worded[Math.floor(worded.length * 0.05)] * 20) / 20;
const kept = worded.filter((b) => b >= rule).length;
const junk = nonSpeech.filter((n) => n.text.trim());
console.log(
  `speech results with words: ${worded.length} of ${speech.length}; threshold by the rule (largest 0.05 step ` +
    `keeping ≥ 95 % of them): ${rule.toFixed(2)}, keeps ${kept}; drops ${
      junk.filter((n) => n.best < rule).length
    } ` +
    `of the ${junk.length} non-speech results that have words`,
);
