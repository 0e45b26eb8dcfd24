/** Failure kinds of the Moonshine engine: one error type each, so callers can tell them apart. */

/** The model folder is missing a file, or its graphs are not a Moonshine encoder/decoder pair. */
export class MoonshineModelError extends Error {
  override name = "MoonshineModelError";
}
