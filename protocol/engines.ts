/**
 * The speech engines a Parley node can run, by name: one list used by the configuration schema
 * (`ASR_ENGINE`, `TTS_ENGINE`), the engine factories, session voices (`"<engine>:<voice>"`) and the TTS job API.
 */

export const ASR_ENGINES = ["ctc", "whisper"] as const;
export type AsrEngineName = typeof ASR_ENGINES[number];

export const TTS_ENGINES = ["flite", "espeak", "vits"] as const;
export type TtsEngineName = typeof TTS_ENGINES[number];
