/** The edge's answer while the database cannot be reached: 503 + Retry-After + the JSON error body, never 500. */
import { asDatabaseUnavailable } from "../db/unavailable.ts";
import { ApiError } from "../lib/errors.ts";
import { registry } from "../lib/metrics.ts";

/** Seconds a client should wait before retrying (an outage is seconds to minutes; retrying sooner only adds load). */
export const DATABASE_RETRY_AFTER_S = 5;

const unavailable = registry.counter(
  "parley_edge_database_unavailable_total",
  "Requests answered 503 because the database could not be reached",
);

export function databaseUnavailableResponse(err: unknown): ApiError | undefined {
  const dbErr = asDatabaseUnavailable(err);
  if (!dbErr) return undefined;
  unavailable.inc();
  return new ApiError(
    503,
    "unavailable",
    "the database is unavailable; retry later",
    { "Retry-After": String(DATABASE_RETRY_AFTER_S) },
  );
}
