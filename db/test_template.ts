/**
 * Migrated database templates shared by test files and test runs. `deno test` loads each test file into its own
 * worker, so a template kept in module state was built again (PGlite's initdb and every migration) once per
 * file, and each process stack a test started on an empty data dir did the same. Templates are named by a
 * digest of everything that shapes them: the migration files and, for PGlite, its build. A changed migration is
 * a new digest, hence a new template. Migrating an empty database stays tested where it is the subject
 * (db/client_test.ts, tests/startup_test.ts, tests/pglite_restart_test.ts).
 */
import { concatBytes } from "../lib/audio/bytes.ts";
import { MIGRATIONS_DIR, openDatabase } from "./client.ts";

const TMP = Deno.env.get("TMPDIR") || "/tmp";

/** Hex digest of the migration files (names and bytes) and of the given extra parts. */
export async function migrationsDigest(...extra: string[]): Promise<string> {
  const names = [...Deno.readDirSync(MIGRATIONS_DIR)].filter((e) => e.isFile).map((e) => e.name).sort();
  const metaDir = `${MIGRATIONS_DIR}/meta`;
  const meta = [...Deno.readDirSync(metaDir)].filter((e) => e.isFile).map((e) => `meta/${e.name}`).sort();
  const enc = new TextEncoder();
  const parts: Uint8Array[] = extra.map((x) => enc.encode(`${x}\n`));
  for (const n of [...names, ...meta]) {
    parts.push(enc.encode(`${n}\n`), Deno.readFileSync(`${MIGRATIONS_DIR}/${n}`), enc.encode("\n"));
  }
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", concatBytes(parts) as Uint8Array<ArrayBuffer>),
  );
  return Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Bump when the way a template is made changes: templates made the old way are then not reused. */
const TEMPLATE_RECIPE = "2";
const pgliteKey = () => migrationsDigest(TEMPLATE_RECIPE, import.meta.resolve("@electric-sql/pglite"));

/** Make `path` (a file or a directory) under a private name and rename it into place: nobody sees half of it. */
async function publish(path: string, write: (part: string) => Promise<void>): Promise<void> {
  const part = `${path}.${Deno.pid}.${crypto.randomUUID().slice(0, 6)}`;
  try {
    await write(part);
    await Deno.rename(part, path);
  } catch {
    // a read-only temp dir, or another process published the same template first: use what exists
    await Deno.remove(part, { recursive: true }).catch(() => {});
  }
}

/**
 * The migrated PGlite template as a data-dir dump (what PGlite's `loadDataDir` takes), cached in the temp dir.
 * The PGlite build is part of its name: a dump is only loadable by the build that wrote it.
 */
export async function pgliteTemplateDump(): Promise<Blob> {
  const path = `${TMP}/parley-test-pglite-${await pgliteKey()}.tar`;
  try {
    return new Blob([await Deno.readFile(path)]);
  } catch { /* not built yet on this machine */ }
  const { PGlite } = await import("@electric-sql/pglite");
  const t = await openDatabase({ dataDir: "memory://" });
  // reach the underlying PGlite through drizzle's session client to dump it
  const client = (t.db as unknown as { $client: InstanceType<typeof PGlite> }).$client;
  // A dump is a copy of a running cluster: without a checkpoint every database loaded from it replays the WAL
  // written since initdb first.
  await client.query("checkpoint");
  const blob = await client.dumpDataDir("none");
  await t.close();
  const bytes = new Uint8Array(await blob.arrayBuffer());
  await publish(path, (part) => Deno.writeFile(part, bytes));
  return blob;
}

/**
 * Put a migrated PGlite cluster at `${dataDir}/pglite`, where `main.ts` (DATA_DIR) keeps its database, for tests
 * that start Parley processes to test something other than a first start: the process then opens a migrated
 * database (its migration step finds nothing to do) instead of spending most of its start-up in initdb.
 */
export async function seedPgliteDataDir(dataDir: string): Promise<void> {
  const cluster = `${TMP}/parley-test-pglite-${await pgliteKey()}.d`;
  try {
    await Deno.stat(`${cluster}/PG_VERSION`);
  } catch {
    const dump = await pgliteTemplateDump();
    const { PGlite } = await import("@electric-sql/pglite");
    await publish(cluster, async (part) => {
      const pg = await PGlite.create(part, { loadDataDir: dump });
      await pg.close();
    });
  }
  const out = await new Deno.Command("cp", { args: ["-a", cluster, `${dataDir}/pglite`], stderr: "piped" })
    .output();
  if (!out.success) throw new Error(`seeding ${dataDir}: ${new TextDecoder().decode(out.stderr)}`);
}
