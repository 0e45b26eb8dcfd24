import assert from "node:assert/strict";
import { CONFIG_SCHEMA, ConfigError, parseConfig } from "../lib/config.ts";

Deno.test("config: defaults parse, every variable is documented in README", async () => {
  const c = parseConfig({});
  assert.equal(c.PORT, 8080);
  assert.equal(c.ASR_ENGINE, "auto");
  // docs/reliability.md documents the outage settings until the README's table is merged with docs/.
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url)) +
    await Deno.readTextFile(new URL("../docs/reliability.md", import.meta.url));
  for (const name of Object.keys(CONFIG_SCHEMA)) {
    assert.ok(readme.includes(`\`${name}\``), `README lacks ${name}`);
  }
});

Deno.test("config: a bad value names the variable", () => {
  for (
    const [env, name] of [
      [{ PORT: "eighty" }, "PORT"],
      [{ PORT: "70000" }, "PORT"],
      [{ DATABASE_URL: "mysql://x" }, "DATABASE_URL"],
      [{ INTERNAL_SECRET: "short" }, "INTERNAL_SECRET"],
      [{ ALLOW_REMOTE_MODELS: "maybe" }, "ALLOW_REMOTE_MODELS"],
      [{ HEARTBEAT_MS: "5000", NODE_TIMEOUT_MS: "4000" }, "NODE_TIMEOUT_MS"],
      [{ SPHINX_SEARCH: "fast" }, "SPHINX_SEARCH"],
      [{ SPHINX_ARGS: "-beam" }, "SPHINX_ARGS"],
      [{ SPHINX_ARGS: "beam 1e-60" }, "SPHINX_ARGS"],
    ] as const
  ) {
    assert.throws(
      () => parseConfig(env),
      (e: unknown) => e instanceof ConfigError && e.message.includes(name),
    );
  }
});

Deno.test("config: the process exits 2 with one clear line naming the variable", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", "all"],
    cwd: new URL("..", import.meta.url).pathname,
    env: { PORT: "not-a-port", DATA_DIR: await Deno.makeTempDir() },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  const err = new TextDecoder().decode(out.stderr).trim().split("\n");
  assert.equal(err.length, 1);
  assert.match(err[0], /^parley: invalid configuration: PORT: /);
});
