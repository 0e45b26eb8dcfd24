/**
 * One database factory for every role. `DATABASE_URL` set → postgres.js pool plus a dedicated connection for
 * LISTEN; unset → embedded PGlite in a data directory guarded by a lock file (PGlite itself does not stop two
 * processes from opening the same directory and corrupting it). Migrations are applied at open, under a
 * Postgres advisory lock so that several nodes starting together don't race (drizzle's migrate() takes none).
 */
import { PGlite } from "@electric-sql/pglite";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import { migrate as migratePostgres } from "drizzle-orm/postgres-js/migrator";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { type SQL, sql } from "drizzle-orm";
import postgres from "postgres";
import * as schema from "./schema.ts";
import { log as rootLog, Logger } from "../lib/log.ts";

export type Schema = typeof schema;
/** The drizzle database type shared by both drivers. */
export type Db = PgDatabase<PgQueryResultHKT, Schema>;

export const MIGRATIONS_DIR = new URL("../migrations", import.meta.url).pathname;
/** Arbitrary constant key for pg_advisory_lock around migrations ("parley" in ASCII, as an int). */
const MIGRATION_LOCK_KEY = 0x7061726c;

export interface DatabaseOptions {
  /** postgres:// URL; when absent PGlite is used in `dataDir`. */
  url?: string;
  /** PGlite data directory (default ./data/pglite). Use "memory://" for a throwaway in-memory DB. */
  dataDir?: string;
  /** PGlite: start from a dumped data dir (fast test databases). */
  loadDataDir?: Blob;
  /** Pool size for postgres.js. */
  poolSize?: number;
  migrate?: boolean;
  log?: Logger;
}

export type Unlisten = () => Promise<void>;

/** An open database with its owner-visible resources. close() is idempotent and releases everything. */
export interface Database {
  readonly kind: "postgres" | "pglite";
  readonly db: Db;
  readonly state: "open" | "closed";
  /** Run raw SQL (drizzle `sql` template) and get rows back, the same shape on both drivers. */
  query<T = Record<string, unknown>>(q: SQL): Promise<T[]>;
  /** Subscribe to NOTIFY on a channel. Resubscribes after reconnects (postgres.js); call `onReconnect` to poll. */
  listen(channel: string, onNotify: (payload: string) => void, onReconnect?: () => void): Promise<Unlisten>;
  notify(channel: string, payload: string): Promise<void>;
  /** true when all migrations in MIGRATIONS_DIR are applied (readiness). */
  migrationsApplied(): Promise<boolean>;
  close(): Promise<void>;
}

export class DatabaseClosedError extends Error {
  constructor() {
    super("database is closed");
    this.name = "DatabaseClosedError";
  }
}

function rowsOf<T>(result: unknown): T[] {
  if (Array.isArray(result)) return result as T[];
  const r = result as { rows?: T[] };
  return r.rows ?? [];
}

function expectedMigrationCount(): number {
  const journal = JSON.parse(Deno.readTextFileSync(`${MIGRATIONS_DIR}/meta/_journal.json`));
  return journal.entries.length;
}

async function countAppliedMigrations(query: Database["query"]): Promise<number> {
  try {
    const rows = await query<{ n: number | string }>(
      sql`select count(*)::int as n from drizzle.__drizzle_migrations`,
    );
    return Number(rows[0]?.n ?? 0);
  } catch {
    return 0;
  }
}

/** What both drivers do the same way, in plain SQL through `query`. */
function sqlMethods(query: Database["query"]): Pick<Database, "notify" | "migrationsApplied"> {
  return {
    async notify(channel, payload) {
      await query(sql`select pg_notify(${channel}, ${payload})`);
    },
    async migrationsApplied() {
      return (await countAppliedMigrations(query)) >= expectedMigrationCount();
    },
  };
}

export async function openDatabase(opts: DatabaseOptions = {}): Promise<Database> {
  const log = (opts.log ?? rootLog).child({ component: "db" });
  return opts.url ? await openPostgres(opts.url, opts, log) : await openPglite(opts, log);
}

/**
 * Seconds a pool connection waits before trying again after failing. postgres.js's default grows as 3^n / 100 s
 * (up to 20 s) over the failures the whole pool has counted, so after an outage of half a minute a node may not
 * reconnect for 10–20 s after the database is back. A node that cannot heartbeat for NODE_TIMEOUT_MS is judged
 * lost, and the edge closes its live sessions. Capped at 1 s, with jitter so nodes do not reconnect in step.
 */
export function reconnectBackoff(failures: number): number {
  return (0.5 + Math.random() / 2) * Math.min(0.05 * 2 ** failures, 1);
}

async function openPostgres(url: string, opts: DatabaseOptions, log: Logger): Promise<Database> {
  const shouldMigrate = opts.migrate ?? true;
  if (shouldMigrate) {
    // Migrate on a single dedicated connection that holds the advisory lock for the whole run.
    const one = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await one`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`;
      const t0 = performance.now();
      await migratePostgres(drizzlePostgres(one, { schema }), { migrationsFolder: MIGRATIONS_DIR });
      await one`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`;
      log.info("migrations applied", { driver: "postgres", ms: Math.round(performance.now() - t0) });
    } finally {
      await one.end({ timeout: 5 });
    }
  }
  const client = postgres(url, {
    max: opts.poolSize ?? 10,
    onnotice: () => {},
    idle_timeout: 30,
    backoff: reconnectBackoff,
  });
  const db = drizzlePostgres(client, { schema }) as unknown as Db;
  let listener: postgres.Sql | undefined;
  let state: "open" | "closed" = "open";
  // Named prepared statements (postgres.js caches them per connection by text): drizzle's execute() sends
  // unnamed ones, so every hot statement (chunk claim, result write, transcript page, search) was parsed and
  // planned again on each call. Our statement texts are fixed (values are always parameters), so the cache
  // stays small. drizzle's dialect renders the SQL exactly as execute() would.
  // deno-lint-ignore no-explicit-any
  const dialect = (db as any).dialect as { sqlToQuery(q: SQL): { sql: string; params: unknown[] } };
  const query = async <T>(q: SQL): Promise<T[]> => {
    if (state === "closed") throw new DatabaseClosedError();
    const { sql: text, params } = dialect.sqlToQuery(q);
    // deno-lint-ignore no-explicit-any
    return rowsOf<T>(await client.unsafe(text, params as any[], { prepare: true }));
  };
  const database: Database = {
    kind: "postgres",
    db,
    get state() {
      return state;
    },
    query,
    async listen(channel, onNotify, onReconnect) {
      if (state === "closed") throw new DatabaseClosedError();
      listener ??= postgres(url, { max: 1, onnotice: () => {}, backoff: reconnectBackoff });
      const sub = await listener.listen(channel, (payload) => onNotify(payload), () => onReconnect?.());
      return async () => {
        await sub.unlisten().catch(() => {});
      };
    },
    ...sqlMethods(query),
    async close() {
      if (state === "closed") return;
      state = "closed";
      await listener?.end({ timeout: 5 });
      await client.end({ timeout: 5 });
    },
  };
  return database;
}

/**
 * Take an exclusive lock beside the data dir: an OS advisory lock (flock) on a lock file that holds our pid for
 * the error message. The kernel drops the lock when its holder dies, however it dies, so a restart right after a
 * kill -9 is never refused: judging by the pid instead saw the dead process as alive while it was still being
 * torn down or not yet reaped (a zombie keeps /proc/<pid>), and a recycled pid could look alive forever.
 * A killed process keeps its files until the kernel has torn down its memory, which takes a moment for a big
 * one on a busy machine: the lock is retried for `waitMs` before the directory is declared in use.
 */
async function acquireLockFile(path: string, waitMs = 3000): Promise<() => void> {
  const f = Deno.openSync(path, { read: true, write: true, create: true });
  let locked = false;
  const deadline = performance.now() + waitMs;
  try {
    while (!(locked = f.tryLockSync(true)) && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (e) {
    f.close();
    throw e;
  }
  if (!locked) {
    f.close();
    let holder = "another process";
    try {
      const pid = Number(Deno.readTextFileSync(path).trim());
      if (Number.isInteger(pid) && pid > 0) holder = `process ${pid}`;
    } catch { /* unreadable: keep the generic name */ }
    throw new Error(`data directory is in use by ${holder} (lock file ${path})`);
  }
  f.truncateSync(0);
  f.writeSync(new TextEncoder().encode(String(Deno.pid)));
  let released = false;
  return () => {
    if (released) return;
    released = true;
    // The file stays: removing it while another process waits to open it would let two holders lock two inodes.
    try {
      f.truncateSync(0);
      f.unlockSync();
    } catch { /* closing releases it anyway */ }
    f.close();
  };
}

async function openPglite(opts: DatabaseOptions, log: Logger): Promise<Database> {
  const dataDir = opts.dataDir ?? "./data/pglite";
  const inMemory = dataDir.startsWith("memory://");
  let releaseLock = () => {};
  if (!inMemory) {
    const parent = dataDir.replace(/\/+$/, "").split("/").slice(0, -1).join("/") || ".";
    Deno.mkdirSync(parent, { recursive: true });
    releaseLock = await acquireLockFile(`${dataDir.replace(/\/+$/, "")}.lock`);
  }
  let pg: PGlite;
  try {
    pg = await PGlite.create(
      inMemory ? undefined : dataDir,
      opts.loadDataDir ? { loadDataDir: opts.loadDataDir } : {},
    );
  } catch (e) {
    releaseLock();
    throw e;
  }
  const db = drizzlePglite(pg, { schema }) as unknown as Db;
  let state: "open" | "closed" = "open";
  const query = async <T>(q: SQL): Promise<T[]> => {
    if (state === "closed") throw new DatabaseClosedError();
    return rowsOf<T>(await db.execute(q));
  };
  if (opts.migrate ?? true) {
    const t0 = performance.now();
    await pg.query(`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`);
    await migratePglite(db as unknown as Parameters<typeof migratePglite>[0], {
      migrationsFolder: MIGRATIONS_DIR,
    });
    await pg.query(`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`);
    log.info("migrations applied", { driver: "pglite", ms: Math.round(performance.now() - t0) });
  }
  return {
    kind: "pglite",
    db,
    get state() {
      return state;
    },
    query,
    async listen(channel, onNotify) {
      if (state === "closed") throw new DatabaseClosedError();
      const unsub = await pg.listen(channel, onNotify);
      return async () => {
        if (state === "open") await unsub().catch(() => {});
      };
    },
    ...sqlMethods(query),
    async close() {
      if (state === "closed") return;
      state = "closed";
      try {
        await pg.close();
      } finally {
        releaseLock();
      }
    },
  };
}

/** Rows of a drizzle `execute` on either driver. */
export { rowsOf };

/** Readiness checks every role reports: the database answers and every migration is applied. */
export async function databaseChecks(
  database: Database,
): Promise<{ database: boolean; migrations: boolean }> {
  const checks = { database: false, migrations: false };
  try {
    await database.query(sql`select 1`);
    checks.database = true;
    checks.migrations = await database.migrationsApplied();
  } catch { /* reported as false */ }
  return checks;
}
