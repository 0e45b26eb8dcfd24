/**
 * Fresh, migrated databases for tests. Default: PGlite restored from a migrated template dump (much faster
 * than migrating each fresh DB; docs/benchmarks.md). With PARLEY_TEST_DATABASE_URL set (CI's second pass), each call creates a new
 * database on that real PostgreSQL server from a migrated template database, and drops it on close.
 *
 * Both templates are shared by every test file of a run and by later runs (db/test_template.ts says why and
 * how they are named).
 */
import postgres from "postgres";
import { type Database, openDatabase } from "./client.ts";
import { migrationsDigest, pgliteTemplateDump } from "./test_template.ts";
import { configureLogging } from "../lib/log.ts";
import type { NewJob } from "./tts_jobs.ts";

let pgliteTemplate: Promise<Blob> | undefined;
let pgTemplate: Promise<string> | undefined;

export function testDatabaseUrl(): string | undefined {
  return Deno.env.get("PARLEY_TEST_DATABASE_URL") || undefined;
}

/**
 * A private PostgreSQL cluster tests can stop and start (.ci/pg.sh: its own data dir and port, never the CI
 * server). `start` returns its URL.
 */
export async function privatePostgres(cmd: "start" | "stop", dir: string, port: number): Promise<string> {
  const out = await new Deno.Command("bash", {
    args: [new URL("../.ci/pg.sh", import.meta.url).pathname, cmd, dir, String(port)],
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`pg.sh ${cmd} failed`);
  return new TextDecoder().decode(out.stdout).trim();
}

if (!Deno.env.get("TEST_LOG")) configureLogging({ level: "error" });

function withDbName(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/**
 * The migrated template database on the server at `url`, shared by every test file of a run (and by later
 * runs against the same server). Built under a private name and renamed when complete, so a template that
 * exists under the final name is always fully migrated, even if a builder died halfway.
 */
async function ensurePgTemplate(url: string): Promise<string> {
  const name = `parley_tmpl_${await migrationsDigest()}`;
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const [found] = await admin`select 1 as ok from pg_database where datname = ${name}`;
    if (found) return name;
    const building = `${name}_b${Deno.pid}_${crypto.randomUUID().slice(0, 6)}`;
    await admin.unsafe(`create database ${building}`);
    try {
      const d = await openDatabase({ url: withDbName(url, building) });
      await d.close();
      // The server may still count the closed pool's backends for a moment ("being accessed by other users").
      for (let attempt = 0;; attempt++) {
        try {
          await admin.unsafe(`alter database ${building} rename to ${name}`);
          break;
        } catch (e) {
          if ((e as { code?: string }).code !== "55006" || attempt >= 50) throw e;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    } catch (e) {
      await admin.unsafe(`drop database if exists ${building} with (force)`);
      // another process finished the same template first: use theirs
      const [other] = await admin`select 1 as ok from pg_database where datname = ${name}`;
      if (!other) throw e;
    }
    return name;
  } finally {
    await admin.end();
  }
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
  pgliteTemplate ??= pgliteTemplateDump();
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
