/**
 * The inference pool's errors, and how any error crosses the worker boundary: the worker sends its class name
 * and message (`toWire`), the pool rebuilds an error of the same class (`fromWire`), so callers on the main
 * isolate test `instanceof` whichever side raised it.
 */
import { ClosedError } from "../../lib/closed_error.ts";
import {
  EngineClosedError,
  InvalidOptionError,
  SynthesisError,
  UnknownVoiceError,
} from "../tts/flite/errors.ts";

/** A low-priority job refused because the queue is full (shed under overload). */
export class OverloadedError extends Error {
  override name = "OverloadedError";
}
/** A queued job replaced by a newer one with the same coalesce key. */
export class SupersededError extends Error {
  override name = "SupersededError";
}
/** The worker running the job crashed, timed out or failed to start. */
export class WorkerCrashedError extends Error {
  override name = "WorkerCrashedError";
}
/** A queued job of an owner that cancelled its work. */
export class JobCancelledError extends Error {
  override name = "JobCancelledError";
}
/** A worker was asked for an engine it did not load, or an engine refused the input. */
export class EngineError extends Error {
  override name = "EngineError";
}

/** An error as it crosses the worker boundary. */
export interface WireError {
  name: string;
  message: string;
  /** ClosedError's fields. */
  closed?: { what: string; state: "closed" | "disposed" };
}

export function toWire(err: unknown): WireError {
  if (err instanceof ClosedError) {
    return { name: err.name, message: err.message, closed: { what: err.what, state: err.state } };
  }
  if (err instanceof Error) return { name: err.name, message: err.message };
  return { name: "Error", message: String(err) };
}

const CLASSES: Record<string, (message: string) => Error> = {
  OverloadedError: (m) => new OverloadedError(m),
  SupersededError: (m) => new SupersededError(m),
  WorkerCrashedError: (m) => new WorkerCrashedError(m),
  JobCancelledError: (m) => new JobCancelledError(m),
  EngineError: (m) => new EngineError(m),
  RangeError: (m) => new RangeError(m),
  TypeError: (m) => new TypeError(m),
  // the flite engine's failure kinds (a trap inside one synthesis is a SynthesisError)
  SynthesisError: (m) => new SynthesisError(m),
  InvalidOptionError: (m) => new InvalidOptionError(m),
  UnknownVoiceError: (m) => new UnknownVoiceError("", [], m),
  EngineClosedError: () => new EngineClosedError(),
};

/** The error `toWire` described, as an instance of its class when that class is known here (else Error). */
export function fromWire(w: WireError): Error {
  if (w.closed) return new ClosedError(w.closed.what, w.closed.state);
  const make = CLASSES[w.name];
  if (make) return make(w.message);
  const e = new Error(w.message);
  e.name = w.name;
  return e;
}
