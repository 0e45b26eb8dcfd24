/**
 * Whole-process start-up: `deno task start` on an empty PGlite data dir answers /healthz within 15 s, prints
 * the URL and a first admin key, restarts idempotently, refuses a second process on the same data dir, and
 * exits 0 on SIGTERM. While its origin loads the engines /readyz is 503 and the lines say it is loading; "ready"
 * comes only once the origin serves sessions. With PARLEY_TEST_DATABASE_URL: two processes racing to migrate an empty Postgres both start.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { testDatabaseUrl, withScratchPostgres } from "../db/testing.ts";
import { freePort, seededDataDir } from "./e2e/stack_process.ts";

const ROOT = new URL("..", import.meta.url).pathname;

interface Proc {
  child: Deno.ChildProcess;
  stdout: () => string;
  stderr: () => string;
}

function spawn(args: string[], env: Record<string, string>): Proc {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { LOG_LEVEL: "warn", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  let err = "";
  const pump = async (s: ReadableStream<Uint8Array>, add: (t: string) => void) => {
    const dec = new TextDecoder();
    for await (const chunk of s) add(dec.decode(chunk, { stream: true }));
  };
  pump(child.stdout, (t) => out += t);
  pump(child.stderr, (t) => err += t);
  return { child, stdout: () => out, stderr: () => err };
}

async function waitHealthy(url: string, ms: number): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    try {
      const r = await fetch(url + "/healthz");
      await r.body?.cancel();
      if (r.ok) return performance.now() - t0;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`not healthy within ${ms} ms`);
}

Deno.test({
  name: "deno task start: fresh data dir healthy within 15 s, admin key once, lock, SIGTERM exit 0",
  // `deno task start` always runs on PGlite: the PostgreSQL pass would only repeat it.
  ignore: testDatabaseUrl() !== undefined,
}, async () => {
  const dataDir = await Deno.makeTempDir();
  const port = freePort();
  const env = { DATA_DIR: dataDir, PORT: String(port), ORIGIN_PORT: String(freePort()) };
  const a = spawn(["task", "start"], env);
  try {
    const ms = await waitHealthy(`http://127.0.0.1:${port}`, 15_000);
    console.log(`healthy after ${Math.round(ms)} ms`);
    // The ready line follows once the origin has loaded its engines.
    for (let i = 0; i < 600 && !(a.stdout().includes("pk_") && a.stdout().includes("ready at")); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(a.stdout(), new RegExp(`ready at http://localhost:${port}`));
    assert.match(a.stdout(), /First admin API key .*: pk_[A-Za-z0-9_-]{43}/);
    // A second process on the same data dir is refused clearly.
    const b = spawn(["run", "-A", "main.ts", "all"], {
      ...env,
      PORT: String(freePort()),
      ORIGIN_PORT: String(freePort()),
    });
    const bs = await b.child.status;
    assert.equal(bs.code, 1);
    assert.match(b.stderr(), /in use by process/);
  } finally {
    a.child.kill("SIGTERM");
  }
  const st = await a.child.status;
  assert.equal(st.code, 0, a.stderr().slice(-2000));
  // Restart: migrations already applied, no new admin key.
  const c = spawn(["run", "-A", "main.ts", "all"], env);
  try {
    await waitHealthy(`http://127.0.0.1:${port}`, 15_000);
    assert.ok(!c.stdout().includes("pk_"));
  } finally {
    c.child.kill("SIGTERM");
  }
  assert.equal((await c.child.status).code, 0);
  await Deno.remove(dataDir, { recursive: true });
});

Deno.test({
  name: "deno task start: /readyz is 503 and the output says loading until the origin serves; then ready",
  // `deno task start` always runs on PGlite: the PostgreSQL pass would only repeat it.
  ignore: testDatabaseUrl() !== undefined,
}, async () => {
  // A migrated database: a first start (initdb, migrations) is the test above; this one is about the engines.
  const dataDir = await seededDataDir();
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const p = spawn(["run", "-A", "--unstable-worker-options", "main.ts", "all"], {
    DATA_DIR: dataDir,
    PORT: String(port),
    ORIGIN_PORT: String(freePort()),
  });
  try {
    await waitHealthy(url, 30_000);
    let notReady: Record<string, unknown> | null = null;
    const t0 = performance.now();
    while (true) {
      assert.ok(performance.now() - t0 < 120_000, `never ready:\n${p.stdout()}\n${p.stderr().slice(-2000)}`);
      const r = await fetch(url + "/readyz");
      const body = await r.json();
      if (r.status === 200) break;
      assert.equal(r.status, 503);
      // Read after the answer: a 503 means the origin did not serve when it was asked, so no ready line yet.
      assert.ok(!p.stdout().includes("ready at"), `503 after the ready line:\n${p.stdout()}`);
      notReady ??= body;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(notReady, "/readyz answered 503 at least once while the engines loaded");
    assert.deepEqual(notReady.checks, { database: true, migrations: true, origin: false });
    // A 200 means the origin was serving: its lines are written before the flag can be seen.
    for (let i = 0; i < 50 && !p.stdout().includes("ready at"); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const out = p.stdout();
    const at = (re: RegExp) => out.search(re);
    const loading = at(/Parley \(edge \+ origin\) loading the speech engines; the edge listens at http:/);
    const key = at(/First admin API key/);
    const serving = at(/Parley origin \S+ serving at http:/);
    const ready = at(new RegExp(`Parley \\(edge \\+ origin\\) ready at http://localhost:${port}`));
    assert.ok(loading >= 0 && key >= 0 && serving >= 0 && ready >= 0, out);
    assert.ok(loading < key && key < serving && serving < ready, `lines out of order:\n${out}`);
    assert.equal(out.match(/ready at/g)?.length, 1, "one ready line");
  } finally {
    p.child.kill("SIGTERM");
  }
  assert.equal((await p.child.status).code, 0, p.stderr().slice(-2000));
  await Deno.remove(dataDir, { recursive: true });
});

Deno.test({
  name: "postgres: empty database, two processes racing to migrate both start",
  ignore: !testDatabaseUrl(),
  fn: async () => {
    await withScratchPostgres(testDatabaseUrl()!, `parley_race_${Deno.pid}`, async (url) => {
      const ports = [freePort(), freePort()];
      const procs = ports.map((p) =>
        spawn(["run", "-A", "main.ts", "edge"], { DATABASE_URL: url, PORT: String(p) })
      );
      try {
        await Promise.all(ports.map((p) => waitHealthy(`http://127.0.0.1:${p}`, 30_000)));
        for (const p of ports) {
          const r = await fetch(`http://127.0.0.1:${p}/readyz`);
          assert.equal(r.status, 200, await r.text());
        }
        // exactly one bootstrap key although two processes started together
        const keys = await postgres(url, { max: 1 })`select count(*)::int as n from api_keys`;
        assert.equal(keys[0].n, 1);
        assert.equal(procs.filter((p) => p.stdout().includes("pk_")).length, 1);
      } finally {
        for (const p of procs) p.child.kill("SIGTERM");
        for (const p of procs) assert.equal((await p.child.status).code, 0);
      }
    });
  },
});
