/**
 * The one error for "this object is closed": every closeable object (sessions, pipelines, pools, engines, the
 * engine hub) throws or rejects with it once `close()` has begun, so callers test `instanceof ClosedError`.
 */
export class ClosedError extends Error {
  override name = "ClosedError";
  /**
   * `what` names the object, e.g. "pipeline s-1" → "pipeline s-1 is closed"; objects whose close is called
   * `dispose` say "disposed".
   */
  constructor(readonly what: string, readonly state: "closed" | "disposed" = "closed") {
    super(`${what} is ${state}`);
  }
}
