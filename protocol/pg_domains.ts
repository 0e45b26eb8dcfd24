/**
 * The database's real value domains as zod schemas, shared by every route that passes client input to SQL.
 * A value the database would reject (an impossible calendar date, a year outside what we store, a number past
 * bigint, a non-UUID where a uuid column is compared, a NUL character in text or jsonb) is a 400 at the edge,
 * never a database error that surfaces as a 500.
 */
import { z } from "zod";

// deno-lint-ignore no-control-regex -- NUL is exactly what is excluded
const NUL = /^[^\u0000]*$/;

/** Text stored in a `text` column or inside `jsonb`: PostgreSQL rejects the NUL character in both. */
export const PgText = z.string().regex(NUL, "must not contain NUL characters");

/** The smallest and largest instants accepted: years 0001–9999 (PostgreSQL has no year 0). */
export const MIN_INSTANT_MS = new Date("0001-01-01T00:00:00Z").getTime();
export const MAX_INSTANT_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

const ISO_PARTS = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(?:Z|[+-](\d\d):?(\d\d))$/i;

/** True when `s` names a real calendar instant (month 1–12, day within the month, hour < 24 …) in 0001–9999. */
export function isRealInstant(s: string): boolean {
  const m = ISO_PARTS.exec(s);
  if (!m) return false;
  const [y, mo, d, h, mi, se] = m.slice(1, 7).map(Number);
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 59) return false;
  if (m[7] !== undefined && (Number(m[7]) > 23 || Number(m[8]) > 59)) return false;
  // Date.UTC maps years 0–99 to 1900–1999; setUTCFullYear does not.
  const day = new Date(Date.UTC(2000, mo - 1, 1));
  day.setUTCFullYear(y, mo - 1, d);
  if (day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d) return false; // 2024-02-31
  const t = Date.parse(s);
  return Number.isFinite(t) && t >= MIN_INSTANT_MS - 86_400_000 && t <= MAX_INSTANT_MS + 86_400_000;
}

/** An ISO 8601 instant with offset, as a `timestamptz` query bound. */
export const PgTimestamp = z.iso.datetime({ offset: true }).refine(
  isRealInstant,
  "not a real date and time between years 0001 and 9999",
);

/** A `uuid` value. */
export const PgUuid = z.uuid();

const BIGINT_MAX = 9_223_372_036_854_775_807n;

// zod runs a refinement even after an earlier check of the same schema failed: each one re-checks the form.

/** A non-negative `bigint` written in decimal. */
export const PgBigintString = z.string().refine(
  (s) => /^\d{1,19}$/.test(s) && BigInt(s) <= BIGINT_MAX,
  "not a non-negative 64-bit integer",
);

/** True when `s` is a decimal count of microseconds since the Unix epoch of an instant in 0001–9999. */
export function isEpochMicros(s: string): boolean {
  if (!/^-?\d{1,19}$/.test(s)) return false;
  const n = BigInt(s);
  return n >= BigInt(MIN_INSTANT_MS) * 1000n && n <= BigInt(MAX_INSTANT_MS) * 1000n + 999n;
}

/** Microseconds since the Unix epoch of an instant in 0001–9999 (keyset cursors over timestamps). */
export const EpochMicrosString = z.string().refine(
  isEpochMicros,
  "not an instant between years 0001 and 9999",
);
