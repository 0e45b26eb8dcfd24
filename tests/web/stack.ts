/**
 * A whole Parley process (edge + origin, `main.ts all`) as a subprocess on free loopback ports with a temp
 * DATA_DIR (an already migrated database): the browser tests talk to exactly what `deno task start` runs, and
 * wrtc stays isolated from the test process. The first admin key is read from stdout.
 */
const ROOT = new URL("../..", import.meta.url).pathname;

import { freePort, seededDataDir } from "../e2e/stack_process.ts";

export interface ProcessStack {
  url: string;
  adminKey: string;
  dataDir: string;
  stdout(): string;
  stderr(): string;
  /** SIGTERM, wait for exit (SIGKILL after `graceMs`), remove the data dir; returns the exit code. */
  close(graceMs?: number): Promise<number>;
}

export async function startProcessStack(
  env: Record<string, string> = {},
  opts: { readyMs?: number } = {},
): Promise<ProcessStack> {
  const dataDir = await seededDataDir("parley-web-");
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-worker-options", "main.ts", "all"],
    cwd: ROOT,
    env: {
      DATA_DIR: dataDir,
      HOST: "127.0.0.1",
      PORT: String(port),
      ORIGIN_HOST: "127.0.0.1",
      ORIGIN_PORT: String(freePort()),
      LOG_LEVEL: "warn",
      // the page's microphone is espeak speech: the bundled ctc recognizer (auto's Moonshine is for human voices)
      ASR_ENGINE: "ctc",
      RATE_LIMIT_RPS: "200",
      RATE_LIMIT_BURST: "400",
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  let err = "";
  const pump = async (s: ReadableStream<Uint8Array>, add: (t: string) => void) => {
    const dec = new TextDecoder();
    for await (const chunk of s) add(dec.decode(chunk, { stream: true }));
  };
  const pumps = Promise.all([pump(child.stdout, (t) => out += t), pump(child.stderr, (t) => err += t)]);
  const url = `http://127.0.0.1:${port}`;
  let exited = null as Deno.CommandStatus | null;
  const status = child.status.then((s) => exited = s);

  const close = async (graceMs = 15_000) => {
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      const t = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, graceMs);
      await status;
      clearTimeout(t);
    }
    await pumps.catch(() => {});
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    return exited!.code;
  };

  // Ready = the admin key was printed, the edge answers and an origin is registered and alive.
  const deadline = performance.now() + (opts.readyMs ?? 120_000);
  let adminKey = "";
  try {
    while (true) {
      if (exited) throw new Error(`parley exited with ${exited.code} during start:\n${err.slice(-3000)}`);
      if (performance.now() > deadline) {
        throw new Error(
          `parley not ready in time (${adminKey ? "no live origin registered" : "no admin key printed"}):\n` +
            `${out.slice(-1000)}\n${err.slice(-3000)}`,
        );
      }
      adminKey ||= out.match(/pk_[A-Za-z0-9_-]{43}/)?.[0] ?? "";
      if (adminKey) {
        try {
          const r = await fetch(`${url}/v1/nodes`, { headers: { authorization: `Bearer ${adminKey}` } });
          const body = await r.json().catch(() => null) as { nodes?: Array<Record<string, unknown>> } | null;
          const nodes = body?.nodes ?? (Array.isArray(body) ? body : []);
          if (r.ok && nodes.some((n) => n.alive !== false && !n.stopped_at && !n.draining)) break;
        } catch { /* not listening yet */ }
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  } catch (e) {
    await close(3000);
    throw e;
  }
  return { url, adminKey, dataDir, stdout: () => out, stderr: () => err, close };
}
