/**
 * Parley as real processes for end-to-end tests: `main.ts all` on a temp PGlite dir, or separate `main.ts edge`
 * and `main.ts origin` processes on a PostgreSQL database. Parses the URL and the first admin key from stdout.
 */
import { seedPgliteDataDir } from "../../db/test_template.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/**
 * A temp DATA_DIR holding an already migrated PGlite database, for process stacks whose test is not about a
 * first start (tests/startup_test.ts and tests/pglite_restart_test.ts start on empty ones): a fresh data dir
 * costs every start PGlite's initdb and all migrations.
 */
export async function seededDataDir(prefix = "parley-e2e-"): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix });
  await seedPgliteDataDir(dir);
  return dir;
}

export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
}

export class ParleyProcess {
  readonly child: Deno.ChildProcess;
  stdout = "";
  stderr = "";
  #done: Promise<Deno.CommandStatus>;

  constructor(readonly role: "all" | "edge" | "origin", readonly env: Record<string, string>) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--unstable-worker-options", "main.ts", role],
      cwd: ROOT,
      // espeak-speech tests assert the bundled recognizer's results: ctc unless a test asks for another
      env: { LOG_LEVEL: "warn", HEARTBEAT_MS: "300", NODE_TIMEOUT_MS: "1500", ASR_ENGINE: "ctc", ...env },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const pump = async (s: ReadableStream<Uint8Array>, add: (t: string) => void) => {
      const dec = new TextDecoder();
      for await (const c of s) add(dec.decode(c, { stream: true }));
    };
    pump(this.child.stdout, (t) => this.stdout += t);
    pump(this.child.stderr, (t) => this.stderr += t);
    this.#done = this.child.status;
  }

  get pid(): number {
    return this.child.pid;
  }

  async waitFor(re: RegExp, timeoutMs = 120_000): Promise<RegExpMatchArray> {
    const t0 = performance.now();
    while (performance.now() - t0 < timeoutMs) {
      const m = this.stdout.match(re);
      if (m) return m;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(
      `${this.role}: no ${re} within ${timeoutMs} ms\nstdout: ${this.stdout}\nstderr: ${
        this.stderr.slice(-3000)
      }`,
    );
  }

  kill(signal: Deno.Signal = "SIGTERM"): void {
    try {
      this.child.kill(signal);
    } catch { /* already gone */ }
  }

  status(): Promise<Deno.CommandStatus> {
    return this.#done;
  }
}

export async function waitReady(url: string, timeoutMs = 90_000): Promise<void> {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    try {
      const r = await fetch(url + "/readyz");
      await r.body?.cancel();
      if (r.ok) return;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms`);
}

export async function call(
  url: string,
  method: string,
  path: string,
  key: string | undefined,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: unknown; headers: Headers; text: string }> {
  const h: Record<string, string> = { ...headers };
  if (key) h.authorization = `Bearer ${key}`;
  let b: string | undefined;
  if (typeof body === "string") b = body;
  else if (body !== undefined) {
    b = JSON.stringify(body);
    h["content-type"] ??= "application/json";
  }
  const res = await fetch(url + path, { method, headers: h, body: b });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch { /* not json */ }
  return { status: res.status, body: parsed, headers: res.headers, text };
}
