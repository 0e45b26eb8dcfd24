/**
 * Fresh, migrated databases for tests. Default: PGlite restored from a migrated template dump (much faster
 * than migrating each fresh DB; docs/benchmarks.md). With PARLEY_TEST_DATABASE_URL set (CI's second pass), each call creates a new
 * database on that real PostgreSQL server from a migrated template database, and drops it on close.
 */
import postgres from "postgres";
import { type Database, openDatabase } from "./client.ts";
import { configureLogging } from "../lib/log.ts";
import type { NewJob } from "./tts_jobs.ts";

let pgliteTemplate: Promise<Blob> | undefined;
let pgTemplate: Promise<string> | undefined;

export function testDatabaseUrl(): string | undefined {
  return Deno.env.get("PARLEY_TEST_DATABASE_URL") || undefined;
}

if (!Deno.env.get("TEST_LOG")) configureLogging({ level: "error" });

function withDbName(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

async function ensurePgTemplate(url: string): Promise<string> {
  const name = `parley_tmpl_${Deno.pid}`;
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`drop database if exists ${name}`);
    await admin.unsafe(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const d = await openDatabase({ url: withDbName(url, name) });
  await d.close();
  globalThis.addEventListener("unload", () => {
    // best effort: templates are per-pid and dropped by CI's cluster teardown anyway
  });
  return name;
}

/**
 * An empty PostgreSQL database `name` on the server at `baseUrl`, for tests that start Parley processes (they
 * migrate it themselves). `fn` gets its URL; the database is dropped afterwards (with force), even on failure.
 */
export async function withScratchPostgres<T>(
  baseUrl: string,
  name: string,
  fn: (url: string) => Promise<T>,
): Promise<T> {
  const admin = postgres(baseUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.unsafe(`create database ${name}`);
    return await fn(withDbName(baseUrl, name));
  } finally {
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
}

/** Runs `fn` on a fresh test database and closes the database afterwards, whether `fn` succeeds or throws. */
export async function withTestDatabase<T>(fn: (db: Database) => Promise<T>): Promise<T> {
  const db = await openTestDatabase();
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

export async function openTestDatabase(): Promise<Database> {
  const url = testDatabaseUrl();
  if (url) {
    pgTemplate ??= ensurePgTemplate(url);
    const template = await pgTemplate;
    const name = `parley_t_${Deno.pid}_${crypto.randomUUID().slice(0, 8)}`;
    const admin = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await admin.unsafe(`create database ${name} template ${template}`);
    } finally {
      await admin.end();
    }
    const d = await openDatabase({ url: withDbName(url, name), migrate: false, poolSize: 5 });
    const close = d.close.bind(d);
    return Object.assign(d, {
      async close() {
        if (d.state === "closed") return;
        await close();
        const a = postgres(url, { max: 1, onnotice: () => {} });
        try {
          await a.unsafe(`drop database if exists ${name} with (force)`);
        } finally {
          await a.end();
        }
      },
    }) as Database;
  }
  pgliteTemplate ??= (async () => {
    const { PGlite } = await import("@electric-sql/pglite");
    const t = await openDatabase({ dataDir: "memory://" });
    // reach the underlying PGlite through drizzle's session client to dump it
    const client = (t.db as unknown as { $client: InstanceType<typeof PGlite> }).$client;
    const blob = await client.dumpDataDir("none");
    await t.close();
    return blob;
  })();
  return await openDatabase({ dataDir: "memory://", loadDataDir: await pgliteTemplate, migrate: false });
}

/** A TTS job of the given chunks (espeak, en-us, wav, interactive) for the job-system tests. */
export function testJob(tenantId: string, chunks: string[], over: Partial<NewJob> = {}): NewJob {
  return {
    tenantId,
    text: chunks.join(" "),
    voice: "en-us",
    engine: "espeak",
    format: "wav",
    priority: "interactive",
    sampleRate: 22050,
    chunks,
    ...over,
  };
}
