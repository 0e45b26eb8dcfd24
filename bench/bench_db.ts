/**
 * A throw-away PostgreSQL database for one benchmark run: created on the server named by DATABASE_URL (or
 * PARLEY_TEST_DATABASE_URL), dropped by `drop()`. Exits 2 with one line when neither is set.
 */
import postgres from "postgres";

export interface BenchDatabase {
  /** Connection URL of the new database. */
  url: string;
  /** Drop it (with force: the benchmark's connections may still be open) and end the admin connection. */
  drop(): Promise<void>;
}

export async function createBenchDatabase(prefix: string): Promise<BenchDatabase> {
  const server = Deno.env.get("DATABASE_URL") || Deno.env.get("PARLEY_TEST_DATABASE_URL");
  if (!server) {
    console.error("set DATABASE_URL or PARLEY_TEST_DATABASE_URL to a PostgreSQL server");
    Deno.exit(2);
  }
  const name = `${prefix}_${Deno.pid}`;
  const admin = postgres(server, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const u = new URL(server);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}
