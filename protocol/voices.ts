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

/**
 * One voice of `GET /v1/voices`. The same list serves Parley's clients (the web voice picker) and OpenAI
 * clients (`client.get("/voices")`): `id` is what `voice` accepts everywhere (sessions, `say`, TTS jobs and
 * batches, `POST /v1/audio/speech`), and `openai_aliases` are the OpenAI voice names that map to it.
 */
export interface VoiceInfo {
  /** `"<engine>:<voice>"`: the name that selects this voice anywhere. */
  id: string;
  engine: TtsEngineName;
  /** The engine's own id for the voice (`rms`, `en-us`); a bare id is accepted too (see the module comment). */
  voice: string;
  /** BCP 47-ish language tags this voice speaks. */
  languages: string[];
  gender: "male" | "female" | null;
  description: string;
  /** The engine's native rate; sessions (48 kHz) and jobs (22.05 kHz) resample to their own. */
  sample_rate: number;
  /** `exact`: word and phoneme times from the engine's own segmentation; `estimated`: from text length. */
  timings: "exact" | "estimated";
  /** OpenAI voice names (`alloy`, `nova` …) that select this voice when its engine speaks (OPENAI_VOICES). */
  openai_aliases: string[];
}

/** `GET /v1/voices`: OpenAI's list shape, plus the default voice. */
export interface VoiceList {
  object: "list";
  /** The default voice's id (TTS_ENGINE / TTS_VOICE). */
  default: string;
  data: VoiceInfo[];
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

/** A catalogue row; `openai_aliases` is derived from OPENAI_VOICES. */
type CatalogueVoice = Omit<VoiceInfo, "openai_aliases">;

const flite = (
  voice: string,
  gender: "male" | "female",
  rate: number,
  description: string,
): CatalogueVoice => ({
  id: `flite:${voice}`,
  engine: "flite",
  voice,
  languages: ["en-us", "en"],
  gender,
  description,
  sample_rate: rate,
  timings: "exact",
});

export const FLITE_VOICE_INFO: readonly CatalogueVoice[] = [
  flite("rms", "male", 16000, "US English male (CMU ARCTIC rms, statistical parametric)"),
  flite("slt", "female", 16000, "US English female (CMU ARCTIC slt, statistical parametric)"),
  flite("awb", "male", 16000, "Scottish English male (CMU ARCTIC awb, statistical parametric)"),
  flite("kal16", "male", 16000, "US English male (diphone, 16 kHz)"),
  flite("kal", "male", 8000, "US English male (diphone, 8 kHz, telephone quality)"),
];

const ESPEAK_VOICE_INFO: readonly CatalogueVoice[] = ESPEAK_VOICES.map((voice) => ({
  id: `espeak:${voice}`,
  engine: "espeak",
  voice,
  languages: [voice],
  gender: null,
  description: `eSpeak NG ${voice} (formant synthesis, every language eSpeak NG has)`,
  sample_rate: 22050,
  timings: "exact",
}));

const VITS_VOICE_INFO: readonly CatalogueVoice[] = [{
  id: "vits:default",
  engine: "vits",
  voice: "default",
  languages: [],
  gender: null,
  description: "the configured VITS model (one voice per model; timings estimated)",
  sample_rate: 16000,
  timings: "estimated",
}];

export const VOICE_CATALOGUE: readonly CatalogueVoice[] = [
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
  if (configured && VOICE_CATALOGUE.some((v) => v.engine === engine && v.voice === configured)) {
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
    return VOICE_CATALOGUE.some((v) => v.engine === engine && v.voice === id) ? { engine, voice: id } : null;
  }
  const order = [defaults.engine, ...TTS_ENGINES.filter((e) => e !== defaults.engine)];
  for (const engine of order) {
    if (VOICE_CATALOGUE.some((v) => v.engine === engine && v.voice === name)) return { engine, voice: name };
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

/**
 * OpenAI voice names → a voice per engine, so `"voice": "alloy"` works with every engine (each engine's row is
 * documented in GET /v1/voices as `openai_aliases`). flite's US voices stand in for OpenAI's by gender:
 * neutral and male names → rms (male) or kal16/awb for variety, female names → slt.
 */
// deno-fmt-ignore
export const OPENAI_VOICES: Record<string, Partial<Record<TtsEngineName, string>>> = {
  alloy:   { flite: "rms",   espeak: "en-us" },
  ash:     { flite: "rms",   espeak: "en-us-nyc" },
  ballad:  { flite: "awb",   espeak: "en-gb-x-rp" },
  coral:   { flite: "slt",   espeak: "en-029" },
  echo:    { flite: "kal16", espeak: "en-gb-scotland" },
  fable:   { flite: "awb",   espeak: "en-gb-x-gbclan" },
  onyx:    { flite: "kal16", espeak: "en-gb-x-gbcwmd" },
  nova:    { flite: "slt",   espeak: "en-029" },
  sage:    { flite: "slt",   espeak: "en-us" },
  shimmer: { flite: "slt",   espeak: "en-gb-x-rp" },
  verse:   { flite: "rms",   espeak: "en-us-nyc" },
};

/** The voice an OpenAI name selects in `engine` (an engine without a column: its default voice); null: no alias. */
export function openAiVoice(
  name: string,
  engine: TtsEngineName,
  defaults: { engine: TtsEngineName; voice?: string },
): ResolvedVoice | null {
  const row = OPENAI_VOICES[name.toLowerCase()];
  if (!row || !Object.hasOwn(OPENAI_VOICES, name.toLowerCase())) return null;
  return { engine, voice: row[engine] ?? defaultVoiceOf(engine, defaults.voice) };
}

export function voiceList(defaults: { engine: TtsEngineName; voice?: string }): VoiceList {
  const d = resolveVoice(undefined, defaults)!;
  return {
    object: "list",
    default: `${d.engine}:${d.voice}`,
    data: VOICE_CATALOGUE.map((v) => ({
      ...v,
      languages: [...v.languages],
      openai_aliases: Object.entries(OPENAI_VOICES).filter(([, m]) => m[v.engine] === v.voice).map(([k]) =>
        k
      ),
    })),
  };
}
