/** Failure kinds of the PocketSphinx engine: one error type each, so callers can tell them apart. */

/** The library, the acoustic model, the LM/grammar or the dictionary is not installed where configured. */
export class SphinxUnavailableError extends Error {
  constructor(message: string, readonly missingPackages: readonly string[] = []) {
    super(message);
    this.name = "SphinxUnavailableError";
  }
}

/** `ps_init` refused the configuration (broken model dir, unreadable LM, bad argument). */
export class SphinxInitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SphinxInitError";
  }
}

/** A decoder call returned an error code, or was made in the wrong state (process before start...). */
export class SphinxDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SphinxDecodeError";
  }
}

/** Use of a decoder, pool, engine or library after its `close()`. */
export class SphinxClosedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SphinxClosedError";
  }
}
