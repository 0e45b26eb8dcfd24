/**
 * The voice catalogue: every voice of every synthesis engine, with one naming scheme shared by session options,
 * `say`, TTS jobs and batches, and `GET /v1/voices`.
 *
 * Naming: `"<engine>:<voice>"` (`flite:rms`, `espeak:en-us`, `espeak:de`, `vits:default`) picks both; a bare id
 * (`rms`, `en-us`) is looked up in the default engine (`TTS_ENGINE`) first, then in the other engines in the
 * order of `TTS_ENGINES`; a bare engine name (`espeak`, `vits`) means that engine's default voice. Anything
 * else is unknown, and the API answers 400 naming `GET /v1/voices`.
 *
 * The lists are static (compiled into the engines' WASM/npm builds), so the edge and the origin both read them
 * from here; the engines' `listVoices()` are tested against them. `vits` has one voice per configured model.
 */
import { TTS_ENGINES, type TtsEngineName } from "./engines.ts";
import { ESPEAK_VOICES } from "./tts.ts";

export interface VoiceInfo {
  engine: TtsEngineName;
  id: string;
  /** `"<engine>:<id>"`: the name that selects this voice anywhere. */
  name: string;
  /** BCP 47-ish language tags this voice speaks. */
  languages: string[];
  gender: "male" | "female" | null;
  description: string;
  /** The engine's native rate; sessions (48 kHz) and jobs (22.05 kHz) resample to their own. */
  sample_rate: number;
  /** Word and phoneme timings come from the engine's own segmentation (false: estimated from text). */
  exact_timings: boolean;
}

export interface VoiceList {
  /** The default voice's name (TTS_ENGINE / TTS_VOICE). */
  default: string;
  voices: VoiceInfo[];
}

/** Speaking rate limits for `speed` (sessions, `say`, jobs) and SSML `<prosody rate>`. */
export const MIN_SPEED = 0.5;
export const MAX_SPEED = 2.0;

/** The default voice of each engine (used when TTS_VOICE is not set for it). */
export const DEFAULT_VOICE: Record<TtsEngineName, string> = {
  flite: "rms",
  espeak: "en-us",
  vits: "default",
};

const flite = (id: string, gender: "male" | "female", rate: number, description: string): VoiceInfo => ({
  engine: "flite",
  id,
  name: `flite:${id}`,
  languages: ["en-us", "en"],
  gender,
  description,
  sample_rate: rate,
  exact_timings: true,
});

export const FLITE_VOICE_INFO: readonly VoiceInfo[] = [
  flite("rms", "male", 16000, "US English male (CMU ARCTIC rms, statistical parametric)"),
  flite("slt", "female", 16000, "US English female (CMU ARCTIC slt, statistical parametric)"),
  flite("awb", "male", 16000, "Scottish English male (CMU ARCTIC awb, statistical parametric)"),
  flite("kal16", "male", 16000, "US English male (diphone, 16 kHz)"),
  flite("kal", "male", 8000, "US English male (diphone, 8 kHz, telephone quality)"),
];

const ESPEAK_VOICE_INFO: readonly VoiceInfo[] = ESPEAK_VOICES.map((id) => ({
  engine: "espeak",
  id,
  name: `espeak:${id}`,
  languages: [id],
  gender: null,
  description: `eSpeak NG ${id} (formant synthesis, every language eSpeak NG has)`,
  sample_rate: 22050,
  exact_timings: true,
}));

const VITS_VOICE_INFO: readonly VoiceInfo[] = [{
  engine: "vits",
  id: "default",
  name: "vits:default",
  languages: [],
  gender: null,
  description: "the configured VITS model (one voice per model; timings estimated)",
  sample_rate: 16000,
  exact_timings: false,
}];

export const VOICE_CATALOGUE: readonly VoiceInfo[] = [
  ...FLITE_VOICE_INFO,
  ...ESPEAK_VOICE_INFO,
  ...VITS_VOICE_INFO,
];

export interface ResolvedVoice {
  engine: TtsEngineName;
  voice: string;
}

/** The engine's own voice id for a configured default (TTS_VOICE may name another engine's voice: then its own). */
export function defaultVoiceOf(engine: TtsEngineName, configured?: string): string {
  if (configured && VOICE_CATALOGUE.some((v) => v.engine === engine && v.id === configured)) {
    return configured;
  }
  return DEFAULT_VOICE[engine];
}

/**
 * Resolves a voice name (see the module comment) against `defaults` (TTS_ENGINE, TTS_VOICE); `undefined` or ""
 * is the default voice. Returns null for an unknown voice.
 */
export function resolveVoice(
  name: string | undefined,
  defaults: { engine: TtsEngineName; voice?: string },
): ResolvedVoice | null {
  if (!name) return { engine: defaults.engine, voice: defaultVoiceOf(defaults.engine, defaults.voice) };
  const colon = name.indexOf(":");
  if (colon >= 0) {
    const engine = name.slice(0, colon) as TtsEngineName;
    if (!TTS_ENGINES.includes(engine)) return null;
    const id = name.slice(colon + 1);
    if (!id) return { engine, voice: defaultVoiceOf(engine, defaults.voice) };
    return VOICE_CATALOGUE.some((v) => v.engine === engine && v.id === id) ? { engine, voice: id } : null;
  }
  const order = [defaults.engine, ...TTS_ENGINES.filter((e) => e !== defaults.engine)];
  for (const engine of order) {
    if (VOICE_CATALOGUE.some((v) => v.engine === engine && v.id === name)) return { engine, voice: name };
  }
  if ((TTS_ENGINES as readonly string[]).includes(name)) {
    const engine = name as TtsEngineName;
    return { engine, voice: defaultVoiceOf(engine, defaults.voice) };
  }
  return null;
}

/** Whether a name is a voice at all: the same answer whichever engine is the default (bare ids try them all). */
export function isKnownVoiceName(name: string): boolean {
  return resolveVoice(name, { engine: TTS_ENGINES[0] }) !== null;
}

/** The message of every unknown-voice error (400 / `error` event). */
export function unknownVoiceMessage(name: string): string {
  return `unknown voice "${name}" (use "<engine>:<voice>", e.g. "flite:rms" or "espeak:de"; list voices at GET /v1/voices)`;
}

export function voiceList(defaults: { engine: TtsEngineName; voice?: string }): VoiceList {
  const d = resolveVoice(undefined, defaults)!;
  return {
    default: `${d.engine}:${d.voice}`,
    voices: VOICE_CATALOGUE.map((v) => ({ ...v, languages: [...v.languages] })),
  };
}
