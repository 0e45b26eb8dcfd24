/**
 * Secrets shared by every node of one deployment. An environment variable wins; otherwise a random value is
 * generated once and stored in `settings`, so a fresh `deno task start` (or several nodes on one database)
 * needs no secret management to work. Insert-or-read is race-safe (ON CONFLICT DO NOTHING, then read).
 */
import { eq } from "drizzle-orm";
import type { Database } from "./client.ts";
import { settings } from "./schema.ts";

function randomSecret(): string {
  const b = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...b)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export async function sharedSecret(database: Database, key: string, fromEnv?: string): Promise<string> {
  if (fromEnv) return fromEnv;
  await database.db.insert(settings).values({ key, value: randomSecret() }).onConflictDoNothing();
  const rows = await database.db.select().from(settings).where(eq(settings.key, key));
  return rows[0].value;
}
