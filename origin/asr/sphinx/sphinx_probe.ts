/**
 * Checks that PocketSphinx can really load a configuration, in a child process. Needed because sphinxbase
 * handles some broken model files with `E_FATAL`, which calls `exit()` and would take the whole origin (every
 * worker shares the process) down with it; the child dies instead and we report its last error lines.
 *
 *   await probeSphinx(config)   // resolves, or throws SphinxInitError / SphinxUnavailableError
 */
import { detectSphinx, type SphinxConfig } from "./sphinx_detect.ts";
import { SphinxInitError, SphinxUnavailableError } from "./sphinx_errors.ts";

const OK = "sphinx-probe-ok";

export async function probeSphinx(config: SphinxConfig, timeoutMs = 30_000): Promise<void> {
  const avail = detectSphinx(config);
  if (!avail.available) throw new SphinxUnavailableError(avail.message, avail.missingPackages);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-ffi",
      "--allow-read",
      "--allow-env",
      new URL(import.meta.url).pathname,
      JSON.stringify(config),
    ],
    env: { SPHINX_LOG: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  });
  let out: Deno.CommandOutput;
  try {
    out = await child.output();
  } catch (e) {
    throw new SphinxInitError(`PocketSphinx probe did not finish: ${e instanceof Error ? e.message : e}`);
  }
  const stdout = new TextDecoder().decode(out.stdout);
  if (out.success && stdout.includes(OK)) return;
  const errLines = new TextDecoder().decode(out.stderr).split("\n")
    .filter((l) => /ERROR|FATAL|Error|error:/.test(l)).slice(-3).map((l) => l.trim());
  throw new SphinxInitError(
    `PocketSphinx could not load model ${config.modelDir} (exit ${out.code}${
      out.signal ? `, ${out.signal}` : ""
    }): ${errLines.join(" | ") || "no error message"}`,
  );
}

if (import.meta.main) {
  const { SphinxDecoder } = await import("./sphinx_decoder.ts");
  const config = JSON.parse(Deno.args[0]) as SphinxConfig;
  const d = SphinxDecoder.open(config);
  d.start();
  d.process(new Int16Array(8000));
  d.finish();
  d.close();
  console.log(OK);
}
