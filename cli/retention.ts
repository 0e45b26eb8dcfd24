/**
 * One retention pass: delete ended sessions (and, by cascade, their events and transcript segments) created
 * more than RETENTION_DAYS days ago. For cron next to PostgreSQL deployments; the edge role also sweeps hourly
 * by itself when RETENTION_DAYS > 0. On PGlite, stop `deno task start` first (its data dir takes one process).
 *   deno task retention [--days N] [--dry-run]
 */
import { parseArgs } from "node:util";
import { sql } from "drizzle-orm";
import { openDatabase } from "../db/client.ts";
import { sweepRetention } from "../db/history.ts";
import { loadConfigOrExit } from "../lib/config.ts";
import { configureLogging } from "../lib/log.ts";

export async function runRetentionCli(argv: string[]): Promise<number> {
  let values: { days?: string; "dry-run"?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { days: { type: "string" }, "dry-run": { type: "boolean", default: false } },
    }));
  } catch (e) {
    console.error(`retention: ${e instanceof Error ? e.message.split("\n")[0] : e}`);
    console.error("usage: deno task retention [--days N] [--dry-run]");
    return 2;
  }
  const config = loadConfigOrExit();
  configureLogging({ level: "warn" });
  const days = values.days !== undefined ? Number(values.days) : config.RETENTION_DAYS;
  if (!Number.isInteger(days) || days < 0) {
    console.error("retention: --days must be a non-negative integer");
    return 2;
  }
  if (days === 0) {
    console.log("retention: RETENTION_DAYS is 0 (keep forever); nothing to do");
    return 0;
  }
  const database = await openDatabase({ url: config.DATABASE_URL, dataDir: `${config.DATA_DIR}/pglite` });
  try {
    if (values["dry-run"]) {
      const [{ n }] = await database.query<{ n: number }>(sql`select count(*)::int as n from sessions
        where state = 'closed' and created_at < now() - make_interval(days => ${days})`);
      console.log(`retention: ${n} ended session(s) older than ${days} day(s) would be deleted`);
    } else {
      const n = await sweepRetention(database, days);
      console.log(`retention: deleted ${n} ended session(s) older than ${days} day(s)`);
    }
    return 0;
  } finally {
    await database.close();
  }
}

if (import.meta.main) Deno.exit(await runRetentionCli(Deno.args));
