/**
 * kill -9 of a process on the embedded database, then a restart within 0.3 s: the new process must take the data
 * directory (the dead one's lock died with it), while a LIVE holder is still refused.
 *
 * The killed process runs under a parent that does not reap it at once (here `sleep`, standing in for a slow init
 * or supervisor), so it lingers as a zombie, as it can for a moment after any kill -9: the restart must not take
 * that zombie for a live holder.
 */
import assert from "node:assert/strict";
import { freePort, ParleyProcess, waitReady } from "./e2e/stack_process.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** `main.ts edge` as the child of a `sleep` that never reaps it; returns the edge's pid and the parent. */
async function edgeUnderLazyParent(
  env: Record<string, string>,
): Promise<{ pid: number; parent: Deno.ChildProcess }> {
  const parent = new Deno.Command("bash", {
    args: [
      "-c",
      `"$@" >/dev/null 2>&1 & echo $!; exec sleep 600`,
      "lazy-parent",
      Deno.execPath(),
      "run",
      "-A",
      "main.ts",
      "edge",
    ],
    cwd: ROOT,
    env: { LOG_LEVEL: "warn", ...env },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = parent.stdout.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  await parent.stdout.cancel().catch(() => {});
  return { pid: Number(new TextDecoder().decode(value).trim()), parent };
}

function processState(pid: number): string {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return "gone";
  }
}

Deno.test("PGlite: kill -9 then restart within 0.3 s starts; a live holder is still refused", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "parley-kill9-" });
  const port = freePort();
  const env = { DATA_DIR: dataDir, PORT: String(port) };
  const first = await edgeUnderLazyParent(env);
  let second: ParleyProcess | undefined;
  try {
    await waitReady(`http://127.0.0.1:${port}`, 60_000);
    // A live holder is refused, with its pid in the message.
    const rival = new ParleyProcess("edge", { ...env, PORT: String(freePort()) });
    assert.equal((await rival.status()).code, 1);
    assert.match(rival.stderr, new RegExp(`in use by process ${first.pid}`));

    Deno.kill(first.pid, "SIGKILL");
    const killedAt = performance.now();
    await new Promise((r) => setTimeout(r, 100));
    second = new ParleyProcess("edge", env);
    const restartMs = performance.now() - killedAt;
    assert.ok(restartMs < 300, `restarted ${Math.round(restartMs)} ms after the kill`);
    // Still there: dying (its memory being torn down) or a zombie. Either way it holds nothing any more.
    assert.notEqual(processState(first.pid), "gone");
    await waitReady(`http://127.0.0.1:${port}`, 60_000).catch((e) => {
      throw new Error(`${e.message}\nstderr: ${second!.stderr.slice(-2000)}`);
    });
    assert.ok(!/in use by process/.test(second.stderr), second.stderr);
    second.kill("SIGTERM");
    assert.equal((await second.status()).code, 0, second.stderr.slice(-2000));
  } finally {
    try {
      Deno.kill(first.pid, "SIGKILL");
    } catch { /* gone */ }
    first.parent.kill("SIGKILL");
    await first.parent.status;
    // (A failure above may have cut the restart short: its exit code is not checked then.)
    if (second) {
      second.kill("SIGTERM");
      await second.status();
    }
    await Deno.remove(dataDir, { recursive: true });
  }
});
