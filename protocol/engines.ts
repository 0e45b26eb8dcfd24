/**
 * The speech engines a Parley node can run, by name: one list used by the configuration schema
 * (`ASR_ENGINE`, `TTS_ENGINE`), the engine factories, session voices (`"<engine>:<voice>"`) and the TTS job API.
 */

export const ASR_ENGINES = ["ctc", "whisper", "sphinx", "moonshine"] as const;
export type AsrEngineName = typeof ASR_ENGINES[number];

/**
 * `ASR_ENGINE` values: an engine, or `auto` (the bundled Moonshine model, else sphinx when PocketSphinx is installed,
 * else the bundled ctc).
 */
export const ASR_ENGINE_SETTINGS = ["auto", ...ASR_ENGINES] as const;
export type AsrEngineSetting = typeof ASR_ENGINE_SETTINGS[number];

export const TTS_ENGINES = ["flite", "espeak", "vits"] as const;
export type TtsEngineName = typeof TTS_ENGINES[number];

/** What speech an engine handles well, in words a user can act on. */
export type EngineUnderstands =
  | "human English"
  | "synthetic English only"
  | "human speech, many languages"
  | "speaks English"
  | "speaks English and other languages";

/** One engine as `GET /v1/engines` and the origin's node row describe it. */
export interface EngineDescriptor {
  kind: "asr" | "tts";
  name: string;
  /** Model folder / id / files the engine uses (or would use). */
  model: string;
  understands: EngineUnderstands;
  /** The engine this origin runs now. */
  active: boolean;
  /** Whether it could run here (library and model present). */
  available: boolean;
  /** How to get it (install line, settings), or what is missing. */
  how_to_enable: string;
}

/** `GET /v1/engines`: the engines of the origins serving sessions (one list per origin node). */
export interface EnginesResponse {
  origins: Array<{ node_id: string; engines: EngineDescriptor[] }>;
}

/**
 * The recognizer to suggest for human speech when the active one understands only synthetic speech: the bundled
 * Moonshine model when it is there, else PocketSphinx (whose `how_to_enable` names the Debian packages).
 */
export function humanSpeechRoute(engines: readonly EngineDescriptor[]): EngineDescriptor | undefined {
  const asr = engines.filter((e) => e.kind === "asr");
  const moonshine = asr.find((e) => e.name === "moonshine");
  return moonshine?.available ? moonshine : asr.find((e) => e.name === "sphinx");
}
