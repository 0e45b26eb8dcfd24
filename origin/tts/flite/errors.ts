/** Failure kinds of the flite engine: one error class per kind, each with a stable `code`. */

/** flite trapped (WebAssembly RuntimeError) or exited non-zero inside one synthesis; the engine stays usable. */
export class SynthesisError extends Error {
  readonly code = "synthesis_failed";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SynthesisError";
  }
}

/** The requested voice is not one of `listVoices()`. */
export class UnknownVoiceError extends Error {
  readonly code = "unknown_voice";
  constructor(readonly voice: string, known: readonly string[], message?: string) {
    super(
      message ?? `unknown flite voice "${voice}" (known: ${known.join(", ")}; list voices at GET /v1/voices)`,
    );
    this.name = "UnknownVoiceError";
  }
}

/** A synthesis option is out of range (e.g. speed outside 0.5–2.0). */
export class InvalidOptionError extends Error {
  readonly code = "invalid_option";
  constructor(message: string) {
    super(message);
    this.name = "InvalidOptionError";
  }
}

/** The engine (or its runtime) was closed. */
export class EngineClosedError extends Error {
  readonly code = "engine_closed";
  constructor() {
    super("flite engine closed");
    this.name = "EngineClosedError";
  }
}
