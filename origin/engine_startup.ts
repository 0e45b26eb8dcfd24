/**
 * Start-up check of the recognizer (before any worker loads it) and the banner line that tells the user which
 * one runs, what it understands and how to get the others. `ASR_ENGINE=sphinx` without PocketSphinx,
 * `ASR_ENGINE=moonshine` without its model files, `auto` with no recognizer at all, or a model PocketSphinx
 * cannot load: one line on stderr and exit 2. The PocketSphinx model is loaded once in a child process first
 * (probeSphinx): sphinxbase `exit()`s on some broken model files.
 */
import type { Config } from "../lib/config.ts";
import { asrEngineChoice, engineDescriptors, sphinxConfig } from "./engine_config.ts";
import { NoAsrEngineError } from "./asr/engine_choice.ts";
import { humanSpeechRoute } from "../protocol/engines.ts";
import { probeSphinx } from "./asr/sphinx/sphinx_probe.ts";

function fail(message: string): never {
  console.error(`parley: ${message}`);
  Deno.exit(2);
}

/**
 * The banner lines, or exit 2 with one line saying what is missing. Quick (file checks); the model load check
 * is `probeAsrEngineOrExit`.
 */
export function checkAsrEngineOrExit(config: Config): string[] {
  let choice;
  try {
    choice = asrEngineChoice(config);
  } catch (e) {
    if (e instanceof NoAsrEngineError) fail(e.message);
    throw e;
  }
  if (choice.engine === "sphinx" && !choice.sphinx.available) {
    fail(`ASR_ENGINE=sphinx: ${choice.sphinx.message}`);
  }
  if (choice.engine === "moonshine" && !choice.moonshineAvailable) {
    const m = engineDescriptors(config).find((e) => e.name === "moonshine")!;
    fail(`ASR_ENGINE=moonshine: the model folder ${m.model} lacks its ONNX files (${m.how_to_enable})`);
  }
  return bannerLines(config);
}

/** Loads the configured recognizer's model once in a child process (sphinx); exit 2 if it cannot. */
export async function probeAsrEngineOrExit(config: Config): Promise<void> {
  if (asrEngineChoice(config).engine !== "sphinx") return;
  try {
    await probeSphinx(sphinxConfig(config));
  } catch (e) {
    fail(`ASR_ENGINE=${config.ASR_ENGINE}: ${e instanceof Error ? e.message : e}`);
  }
}

export function bannerLines(config: Config): string[] {
  const asr = engineDescriptors(config).filter((e) => e.kind === "asr");
  const active = asr.find((e) => e.active)!;
  const lines = [`Speech recognition: ${active.name} (understands ${active.understands}; ${active.model})`];
  const human = humanSpeechRoute(asr);
  if (active.understands === "synthetic English only" && human) {
    lines.push(`  for human speech: ${human.how_to_enable}`);
  }
  if (active.name !== "whisper") lines.push(`  ${asr.find((e) => e.name === "whisper")!.how_to_enable}`);
  return lines;
}
