/**
 * "The database cannot be reached right now": one error type for every driver's way of saying so (postgres.js
 * socket errors and its own CONNECTION_* codes, PostgreSQL's connection-exception and shutdown SQLSTATEs, a
 * closed PGlite). Callers that can wait (a session's event log, heartbeats) retry these; the edge answers them
 * with 503 + Retry-After instead of 500. Anything else (a constraint violation, a bad statement) is not this.
 */

export class DatabaseUnavailableError extends Error {
  constructor(readonly detail: string, options?: { cause?: unknown }) {
    super(`database unavailable: ${detail}`, options);
    this.name = "DatabaseUnavailableError";
  }
}

/** Node/Deno socket errors and postgres.js's own connection codes. */
const SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "CONNECTION_ENDED",
  "CONNECT_TIMEOUT",
]);

/**
 * SQLSTATEs that mean "not now" rather than "wrong": class 08 (connection exception), 57P01-57P03 (admin or
 * crash shutdown, cannot connect now), 53300 (too many connections).
 */
function unavailableSqlState(code: string): boolean {
  return /^08/.test(code) || code === "57P01" || code === "57P02" || code === "57P03" || code === "53300";
}

/** The DatabaseUnavailableError behind `err` (walking `cause`: drizzle wraps driver errors), or undefined. */
export function asDatabaseUnavailable(err: unknown): DatabaseUnavailableError | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e; depth++) {
    if (e instanceof DatabaseUnavailableError) return e;
    if (typeof e !== "object") return undefined;
    const o = e as { code?: unknown; name?: unknown; message?: unknown; cause?: unknown };
    const code = typeof o.code === "string" ? o.code : "";
    if (SOCKET_CODES.has(code) || (code.length === 5 && unavailableSqlState(code))) {
      return new DatabaseUnavailableError(`${code}: ${String(o.message ?? "")}`, { cause: err });
    }
    if (o.name === "DatabaseClosedError") {
      return new DatabaseUnavailableError("database is closed", { cause: err });
    }
    // PGlite after close() (or a crash of its WASM instance) says so only in words.
    if (typeof o.message === "string" && /PGlite is closed/i.test(o.message)) {
      return new DatabaseUnavailableError(o.message, { cause: err });
    }
    e = o.cause;
  }
  return undefined;
}

export function isDatabaseUnavailable(err: unknown): boolean {
  return asDatabaseUnavailable(err) !== undefined;
}
