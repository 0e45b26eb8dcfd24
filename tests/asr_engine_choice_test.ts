/**
 * Engine choice at start-up, through the real entry point: `ASR_ENGINE=sphinx` without PocketSphinx exits 2 with
 * one line naming the Debian packages; a broken model folder exits 2 naming the folder (the model is loaded in
 * a child process first: sphinxbase exit()s on some broken files); `ASR_ENGINE=moonshine` without its model
 * files exits 2 naming the folder; `auto` picks the bundled Moonshine model, else sphinx when installed, else
 * ctc, else exits 2. The descriptors say what each recognizer understands.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../lib/config.ts";
import { asrEngineChoice, engineDescriptors } from "../origin/engine_config.ts";
import { NoAsrEngineError } from "../origin/asr/engine_choice.ts";
import { DEFAULT_SPHINX_CONFIG, detectSphinx } from "../origin/asr/sphinx/sphinx_detect.ts";

const ROOT = new URL("..", import.meta.url).pathname;

async function start(env: Record<string, string>): Promise<{ code: number; err: string[] }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-worker-options", "main.ts", "all"],
    cwd: ROOT,
    env: { DATA_DIR: await Deno.makeTempDir(), PORT: "0", ORIGIN_PORT: "0", LOG_LEVEL: "error", ...env },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  return { code: out.code, err: new TextDecoder().decode(out.stderr).trim().split("\n").filter(Boolean) };
}

Deno.test("ASR_ENGINE=sphinx without the libraries: exit 2, one line naming the Debian packages", async () => {
  const empty = await Deno.makeTempDir();
  const r = await start({ ASR_ENGINE: "sphinx", SPHINX_LIB_DIR: empty });
  assert.equal(r.code, 2);
  assert.equal(r.err.length, 1, r.err.join("\n"));
  assert.match(r.err[0], /^parley: ASR_ENGINE=sphinx: PocketSphinx .*unavailable/);
  assert.match(r.err[0], /apt-get install libpocketsphinx3 pocketsphinx-en-us/);
});

Deno.test("ASR_ENGINE=sphinx with an empty model folder: exit 2, one line naming the folder and packages", async () => {
  const empty = await Deno.makeTempDir();
  const r = await start({ ASR_ENGINE: "sphinx", SPHINX_MODEL_DIR: empty });
  assert.equal(r.code, 2);
  assert.equal(r.err.length, 1, r.err.join("\n"));
  assert.ok(r.err[0].includes(empty), r.err[0]);
  assert.match(r.err[0], /libpocketsphinx3 pocketsphinx-en-us/);
});

Deno.test("ASR_ENGINE=sphinx with a broken model folder: exit 2 with a clear error, not a crash", async () => {
  const broken = await Deno.makeTempDir();
  for (const f of ["mdef", "means", "variances", "transition_matrices"]) {
    await Deno.writeTextFile(`${broken}/${f}`, "not a model\n");
  }
  await Deno.copyFile(`${DEFAULT_SPHINX_CONFIG.modelDir}/feat.params`, `${broken}/feat.params`);
  const r = await start({ ASR_ENGINE: "sphinx", SPHINX_MODEL_DIR: broken });
  assert.equal(r.code, 2);
  assert.equal(r.err.length, 1, r.err.join("\n"));
  assert.match(r.err[0], /^parley: ASR_ENGINE=sphinx: PocketSphinx could not load model /);
  assert.ok(r.err[0].includes(broken), r.err[0]);
});

Deno.test("ASR_ENGINE=moonshine without its model files: exit 2, one line naming the folder", async () => {
  const empty = await Deno.makeTempDir();
  const r = await start({ ASR_ENGINE: "moonshine", MOONSHINE_MODEL: empty });
  assert.equal(r.code, 2);
  assert.equal(r.err.length, 1, r.err.join("\n"));
  assert.match(r.err[0], /^parley: ASR_ENGINE=moonshine: the model folder .* lacks its ONNX files/);
  assert.ok(r.err[0].includes(empty), r.err[0]);
});

Deno.test("ASR_ENGINE=auto: the bundled moonshine, else sphinx when installed, else ctc, else exit 2", async () => {
  const empty = await Deno.makeTempDir();
  const installed = detectSphinx().available;
  assert.ok(installed, "this machine has libpocketsphinx3 + pocketsphinx-en-us (the CI installs them)");
  assert.equal(asrEngineChoice(parseConfig({})).engine, "moonshine");
  assert.equal(asrEngineChoice(parseConfig({ MOONSHINE_MODEL: empty })).engine, "sphinx");
  assert.equal(asrEngineChoice(parseConfig({ MOONSHINE_MODEL: empty, SPHINX_LIB_DIR: empty })).engine, "ctc");
  assert.throws(
    () => asrEngineChoice(parseConfig({ SPHINX_LIB_DIR: empty, MODELS_DIR: empty })),
    NoAsrEngineError,
  );
  const auto = engineDescriptors(parseConfig({}));
  const moonshine = auto.find((e) => e.name === "moonshine")!;
  assert.deepEqual([moonshine.active, moonshine.available, moonshine.understands], [
    true,
    true,
    "human English",
  ]);
  const d = engineDescriptors(parseConfig({ MOONSHINE_MODEL: empty, SPHINX_LIB_DIR: empty }));
  const ctc = d.find((e) => e.name === "ctc")!;
  const sphinx = d.find((e) => e.name === "sphinx")!;
  assert.deepEqual([ctc.active, ctc.understands], [true, "synthetic English only"]);
  assert.deepEqual([sphinx.active, sphinx.available, sphinx.understands], [false, false, "human English"]);
  assert.match(sphinx.how_to_enable, /apt-get install libpocketsphinx3 pocketsphinx-en-us/);
  assert.deepEqual(d.find((e) => e.name === "moonshine")!.available, false);
  const r = await start({ SPHINX_LIB_DIR: empty, MODELS_DIR: empty });
  assert.equal(r.code, 2);
  assert.equal(r.err.length, 1, r.err.join("\n"));
  assert.match(r.err[0], /^parley: ASR_ENGINE=auto found no recognizer/);
});

Deno.test("banner and the Live view's recognizer line: a human-speech route only when the active one lacks it", async () => {
  const { bannerLines } = await import("../origin/engine_startup.ts");
  const { recognizerLine } = await import("../web/src/live.ts");
  const empty = await Deno.makeTempDir();
  const auto = bannerLines(parseConfig({}));
  assert.match(auto[0], /^Speech recognition: moonshine \(understands human English; .*moonshine-tiny-en\)$/);
  assert.ok(!auto.some((l) => /for human speech/.test(l)), auto.join("\n"));
  const ctc = bannerLines(parseConfig({ ASR_ENGINE: "ctc" }));
  assert.match(ctc[0], /^Speech recognition: ctc \(understands synthetic English only/);
  assert.ok(ctc.includes("  for human speech: ASR_ENGINE=moonshine (or auto)"), ctc.join("\n"));
  // without the Moonshine model the route is PocketSphinx
  const noMoon = bannerLines(parseConfig({ ASR_ENGINE: "ctc", MOONSHINE_MODEL: empty }));
  assert.ok(noMoon.some((l) => /^ {2}for human speech: ASR_ENGINE=sphinx/.test(l)), noMoon.join("\n"));

  const line = (config: Record<string, string>) =>
    recognizerLine({ origins: [{ node_id: "o", engines: engineDescriptors(parseConfig(config)) }] });
  assert.equal(line({}), "Speech recognition: moonshine, understands human English.");
  assert.equal(
    line({ ASR_ENGINE: "ctc" }),
    "Speech recognition: ctc, understands synthetic English only. For human speech: ASR_ENGINE=moonshine (or auto).",
  );
  assert.equal(recognizerLine({ origins: [] }), "No origin is serving sessions right now.");
});
