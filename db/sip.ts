/**
 * SIP credentials and numbers of tenants: the admin REST API (edge) writes them, the origin's SIP agent reads
 * them for each call. Passwords are never stored: only the digest HA1 hashes (MD5 and SHA-256 of
 * `username:realm:password`, RFC 2617 / RFC 8760), which is all a digest check needs.
 */
import { createHash } from "node:crypto";
import { and, asc, eq, sql } from "drizzle-orm";
import type { Database } from "./client.ts";
import { sessions, sipCredentials, sipNumbers } from "./schema.ts";

export type SipCredentialRow = typeof sipCredentials.$inferSelect;
export type SipNumberRow = typeof sipNumbers.$inferSelect;

/** A unique key (username in realm, or number) already taken, by this tenant or another. */
export class SipConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SipConflictError";
  }
}

function ha1(alg: "md5" | "sha256", user: string, realm: string, password: string): string {
  return createHash(alg).update(`${user}:${realm}:${password}`).digest("hex");
}

function isUniqueViolation(err: unknown): boolean {
  for (let e = err as { code?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.code === "23505") return true;
  }
  return false;
}

export async function createSipCredential(
  database: Database,
  input: { tenantId: string; username: string; realm: string; password: string },
): Promise<SipCredentialRow> {
  try {
    const [row] = await database.db.insert(sipCredentials).values({
      tenantId: input.tenantId,
      username: input.username,
      realm: input.realm,
      ha1Md5: ha1("md5", input.username, input.realm, input.password),
      ha1Sha256: ha1("sha256", input.username, input.realm, input.password),
    }).returning();
    return row;
  } catch (err) {
    if (isUniqueViolation(err)) throw new SipConflictError(`SIP user ${input.username} already exists`);
    throw err;
  }
}

export function listSipCredentials(database: Database, tenantId: string): Promise<SipCredentialRow[]> {
  return database.db.select().from(sipCredentials).where(eq(sipCredentials.tenantId, tenantId))
    .orderBy(asc(sipCredentials.createdAt), asc(sipCredentials.id));
}

/** true when the tenant's credential existed and is now gone. */
export async function deleteSipCredential(
  database: Database,
  tenantId: string,
  id: string,
): Promise<boolean> {
  const rows = await database.db.delete(sipCredentials)
    .where(and(eq(sipCredentials.id, id), eq(sipCredentials.tenantId, tenantId)))
    .returning({ id: sipCredentials.id });
  return rows.length > 0;
}

/** Digest lookup: the credential of user@realm (any tenant; the caller checks the number's tenant). */
export async function findSipCredential(
  database: Database,
  username: string,
  realm: string,
): Promise<SipCredentialRow | undefined> {
  const rows = await database.db.select().from(sipCredentials)
    .where(and(eq(sipCredentials.username, username), eq(sipCredentials.realm, realm)));
  return rows[0];
}

export async function createSipNumber(
  database: Database,
  input: {
    tenantId: string;
    number: string;
    options: Record<string, unknown>;
    greeting?: string | null;
    room?: string | null;
  },
): Promise<SipNumberRow> {
  try {
    const [row] = await database.db.insert(sipNumbers).values({
      tenantId: input.tenantId,
      number: input.number,
      options: input.options,
      greeting: input.greeting ?? null,
      room: input.room ?? null,
    }).returning();
    return row;
  } catch (err) {
    if (isUniqueViolation(err)) throw new SipConflictError(`number ${input.number} already exists`);
    throw err;
  }
}

export function listSipNumbers(database: Database, tenantId: string): Promise<SipNumberRow[]> {
  return database.db.select().from(sipNumbers).where(eq(sipNumbers.tenantId, tenantId))
    .orderBy(asc(sipNumbers.number));
}

export async function deleteSipNumber(database: Database, tenantId: string, id: string): Promise<boolean> {
  const rows = await database.db.delete(sipNumbers)
    .where(and(eq(sipNumbers.id, id), eq(sipNumbers.tenantId, tenantId)))
    .returning({ id: sipNumbers.id });
  return rows.length > 0;
}

/** The number an incoming call dialled (Request-URI user), whatever its tenant. */
export async function findSipNumber(database: Database, number: string): Promise<SipNumberRow | undefined> {
  const rows = await database.db.select().from(sipNumbers).where(eq(sipNumbers.number, number));
  return rows[0];
}

/** Advisory lock class of the per-tenant session count (the second key is the tenant's hash). */
const TENANT_SESSIONS_LOCK = 7061728;

/**
 * Store an incoming call's session row (kind `sip`, `connecting`) unless its tenant already has `maxLive`
 * sessions that are not closed: calls and WebRTC sessions share the tenant's limit. Count and insert run in
 * one transaction under a per-tenant advisory lock, so simultaneous INVITEs (on any origin) cannot pass the
 * limit together. Returns the tenant's live count when over the limit (nothing stored), else null.
 */
export async function insertCallSessionWithinLimit(
  database: Database,
  input: { id: string; tenantId: string; nodeId: string; mode: string; options: object; maxLive: number },
): Promise<{ live: number } | null> {
  return await database.db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${TENANT_SESSIONS_LOCK}, hashtext(${input.tenantId}))`);
    const res = await tx.execute(
      sql`select count(*)::int as n from sessions where tenant_id = ${input.tenantId} and state <> 'closed'`,
    );
    const rows = Array.isArray(res) ? res : (res as unknown as { rows: Array<{ n: number }> }).rows;
    const live = Number((rows[0] as { n: number }).n);
    if (live >= input.maxLive) return { live };
    await tx.insert(sessions).values({
      id: input.id,
      tenantId: input.tenantId,
      nodeId: input.nodeId,
      mode: input.mode,
      kind: "sip",
      options: input.options,
    });
    return null;
  });
}
