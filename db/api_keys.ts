/**
 * Tenants and API keys. Keys are `pk_` + 43 base64url chars (32 random bytes). Only the SHA-256 hash and a
 * short display prefix are stored; the key is shown once, at creation.
 */
import { and, asc, eq, isNull, sql } from "drizzle-orm";
import type { Database } from "./client.ts";
import { apiKeys, tenants } from "./schema.ts";
import { type Scope, SCOPES } from "../protocol/api.ts";

export const KEY_PREFIX = "pk_";

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export async function hashKey(key: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

export function isScope(s: string): s is Scope {
  return (SCOPES as readonly string[]).includes(s);
}

export async function createTenant(database: Database, name: string): Promise<{ id: string; name: string }> {
  const [row] = await database.db.insert(tenants).values({ name }).returning({
    id: tenants.id,
    name: tenants.name,
  });
  return row;
}

export interface CreatedKey {
  id: string;
  tenantId: string;
  name: string;
  scopes: Scope[];
  prefix: string;
  /** The secret itself: returned once, never stored. */
  key: string;
}

export async function createApiKey(
  database: Database,
  opts: { tenantId: string; name: string; scopes: Scope[]; maxSessions?: number },
): Promise<CreatedKey> {
  const key = KEY_PREFIX + base64url(crypto.getRandomValues(new Uint8Array(32)));
  const prefix = key.slice(0, 10);
  const [row] = await database.db.insert(apiKeys).values({
    tenantId: opts.tenantId,
    name: opts.name,
    prefix,
    hash: await hashKey(key),
    scopes: [...new Set(opts.scopes)],
    maxSessions: opts.maxSessions,
  }).returning({ id: apiKeys.id });
  return { id: row.id, tenantId: opts.tenantId, name: opts.name, scopes: opts.scopes, prefix, key };
}

export interface KeyRecord {
  id: string;
  tenantId: string;
  name: string;
  prefix: string;
  scopes: Scope[];
  maxSessions: number | null;
  createdAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

const keyColumns = {
  id: apiKeys.id,
  tenantId: apiKeys.tenantId,
  name: apiKeys.name,
  prefix: apiKeys.prefix,
  scopes: apiKeys.scopes,
  maxSessions: apiKeys.maxSessions,
  createdAt: apiKeys.createdAt,
  revokedAt: apiKeys.revokedAt,
  lastUsedAt: apiKeys.lastUsedAt,
};

/** Look a presented key up by hash; null when unknown or revoked. */
export async function findActiveKey(database: Database, key: string): Promise<KeyRecord | null> {
  if (!key.startsWith(KEY_PREFIX) || key.length > 128) return null;
  const rows = await database.db.select(keyColumns).from(apiKeys)
    .where(and(eq(apiKeys.hash, await hashKey(key)), isNull(apiKeys.revokedAt)));
  return (rows[0] as KeyRecord | undefined) ?? null;
}

export async function findKeyById(database: Database, id: string): Promise<KeyRecord | null> {
  const rows = await database.db.select(keyColumns).from(apiKeys).where(eq(apiKeys.id, id));
  return (rows[0] as KeyRecord | undefined) ?? null;
}

export async function listApiKeys(database: Database, tenantId?: string): Promise<KeyRecord[]> {
  const q = database.db.select(keyColumns).from(apiKeys);
  const rows = tenantId
    ? await q.where(eq(apiKeys.tenantId, tenantId)).orderBy(asc(apiKeys.createdAt))
    : await q.orderBy(asc(apiKeys.createdAt));
  return rows as KeyRecord[];
}

/** Revoke; returns false when no such key in that tenant (or already revoked). */
export async function revokeApiKey(database: Database, id: string, tenantId?: string): Promise<boolean> {
  const cond = tenantId
    ? and(eq(apiKeys.id, id), eq(apiKeys.tenantId, tenantId), isNull(apiKeys.revokedAt))
    : and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt));
  const rows = await database.db.update(apiKeys).set({ revokedAt: sql`now()` }).where(cond)
    .returning({ id: apiKeys.id });
  return rows.length > 0;
}

export async function countKeys(database: Database): Promise<number> {
  const rows = await database.query<{ n: number }>(sql`select count(*)::int as n from api_keys`);
  return Number(rows[0].n);
}

/**
 * First start: when no key exists at all, create the `default` tenant and an admin key and return it (once).
 * Serialized with an advisory lock so two nodes starting together don't both create one.
 */
export async function bootstrapAdminKey(database: Database): Promise<CreatedKey | null> {
  return await database.db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(7061727)`);
    const rows = await tx.execute(sql`select count(*)::int as n from api_keys`);
    const n = Number((Array.isArray(rows) ? rows : (rows as { rows: { n: number }[] }).rows)[0].n);
    if (n > 0) return null;
    const [t] = await tx.insert(tenants).values({ name: "default" }).returning({ id: tenants.id });
    const key = KEY_PREFIX + base64url(crypto.getRandomValues(new Uint8Array(32)));
    const [k] = await tx.insert(apiKeys).values({
      tenantId: t.id,
      name: "bootstrap admin",
      prefix: key.slice(0, 10),
      hash: await hashKey(key),
      scopes: ["admin"],
    }).returning({ id: apiKeys.id });
    return {
      id: k.id,
      tenantId: t.id,
      name: "bootstrap admin",
      scopes: ["admin"],
      prefix: key.slice(0, 10),
      key,
    };
  });
}
