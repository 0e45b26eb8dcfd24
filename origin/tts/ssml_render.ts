/**
 * Renders a validated SSML document (protocol/ssml.ts) with any engine: each text run is synthesized on its own
 * at its rate, breaks become silence, and the results are joined into one utterance whose word char ranges index
 * `doc.text` (the runs joined by single spaces) and whose timings are shifted to the joined audio. The user's
 * markup never reaches the engine.
 */
import type { SsmlDocument } from "../../protocol/ssml.ts";
import type { SynthesisResult, SynthPhoneme, SynthWord } from "./engine.ts";

/** The part of an engine the renderer needs; `speed` is ignored by engines without a rate control. */
export interface RunSynthesizer {
  synthesize(text: string, voice?: string, opts?: { speed?: number }): Promise<SynthesisResult>;
}

export async function renderSsml(
  engine: RunSynthesizer,
  doc: SsmlDocument,
  opts: { voice?: string; speed?: number; minSpeed?: number; maxSpeed?: number } = {},
): Promise<SynthesisResult> {
  const parts: Int16Array[] = [];
  const words: SynthWord[] = [];
  const phonemes: SynthPhoneme[] = [];
  let sampleRate = 0, samples = 0, charOffset = 0, estimated = false;
  const pendingSilenceMs: number[] = [];
  const nowMs = () => sampleRate ? (samples * 1000) / sampleRate : 0;
  const addSilence = (ms: number) => {
    const n = Math.round((ms * sampleRate) / 1000);
    if (!n) return;
    phonemes.push({
      phoneme: "pau",
      start_ms: Math.round(nowMs()),
      duration_ms: Math.round(ms),
      viseme: "rest",
    });
    parts.push(new Int16Array(n));
    samples += n;
  };
  for (const s of doc.segments) {
    if (s.kind === "break") {
      if (sampleRate) addSilence(s.ms);
      else pendingSilenceMs.push(s.ms); // rate unknown until the first run
      continue;
    }
    const speed = Math.min(opts.maxSpeed ?? 2, Math.max(opts.minSpeed ?? 0.5, s.rate * (opts.speed ?? 1)));
    const r = await engine.synthesize(s.text, opts.voice, { speed });
    if (!sampleRate) {
      sampleRate = r.sampleRate;
      for (const ms of pendingSilenceMs.splice(0)) addSilence(ms);
    }
    if (r.sampleRate !== sampleRate) throw new Error("engine changed sample rate within one utterance");
    const at = nowMs();
    const pcm = r.pcm instanceof Int16Array
      ? r.pcm
      : Int16Array.from(r.pcm, (x) => Math.max(-32768, Math.min(32767, Math.round(x * 32767))));
    for (const w of r.words) {
      words.push({
        ...w,
        start_ms: Math.round(w.start_ms + at),
        char_start: w.char_start + charOffset,
        char_end: w.char_end + charOffset,
      });
    }
    for (const p of r.phonemes) phonemes.push({ ...p, start_ms: Math.round(p.start_ms + at) });
    parts.push(pcm);
    samples += pcm.length;
    estimated ||= r.estimated;
    charOffset += s.text.length + 1;
  }
  const pcm = new Int16Array(samples);
  let o = 0;
  for (const p of parts) {
    pcm.set(p, o);
    o += p.length;
  }
  return {
    pcm,
    sampleRate: sampleRate || 16000,
    durationMs: sampleRate ? (samples * 1000) / sampleRate : 0,
    words,
    phonemes,
    estimated,
  };
}
