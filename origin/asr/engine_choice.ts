/**
 * Which recognizer runs, and what users are told about the others. `ASR_ENGINE=auto` picks the bundled
 * `moonshine` model (trained on human speech; 4.6 % WER on the Debian human recordings where PocketSphinx gets
 * 27.8 %, both on whole files, docs/recognition.md), else `sphinx` when the PocketSphinx libraries and model
 * are installed, else the bundled `ctc` (trained on espeak speech only), else fails. The descriptors feed the
 * start-up banner, `/readyz`, the origin's node row and `GET /v1/engines`. Only file checks here: nothing is
 * loaded.
 */
import { existsSync } from "node:fs";
import type { AsrEngineName, AsrEngineSetting, EngineDescriptor } from "../../protocol/engines.ts";
import { modelFolder } from "../model_path.ts";
import { MOONSHINE_FILES } from "./moonshine/moonshine_files.ts";
import {
  detectSphinx,
  SPHINX_INSTALL_LINE,
  type SphinxAvailability,
  type SphinxConfig,
} from "./sphinx/sphinx_detect.ts";

export interface EngineChoiceInput {
  setting: AsrEngineSetting;
  /** ASR_MODEL (ctc / whisper model setting). */
  model: string;
  /** MOONSHINE_MODEL. */
  moonshineModel: string;
  modelsDir: string;
  sphinx: SphinxConfig;
}

export interface EngineChoice {
  engine: AsrEngineName;
  /** Why this engine (auto's decision, or "configured"). */
  reason: string;
  sphinx: SphinxAvailability;
  ctcAvailable: boolean;
  moonshineAvailable: boolean;
}

/** No recognizer can run: `auto` found neither bundled model nor PocketSphinx. */
export class NoAsrEngineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NoAsrEngineError";
  }
}

const CTC_MODEL = "parley-asr-en";

function ctcModel(input: EngineChoiceInput): string {
  return input.setting === "ctc" ? input.model : CTC_MODEL;
}

function ctcPresent(input: EngineChoiceInput): boolean {
  return existsSync(`${modelFolder(ctcModel(input), input.modelsDir)}/onnx`);
}

function moonshinePresent(input: EngineChoiceInput): boolean {
  const dir = modelFolder(input.moonshineModel, input.modelsDir);
  return MOONSHINE_FILES.every((f) => existsSync(`${dir}/${f}`));
}

export function chooseAsrEngine(input: EngineChoiceInput): EngineChoice {
  const sphinx = detectSphinx(input.sphinx);
  const found = { sphinx, ctcAvailable: ctcPresent(input), moonshineAvailable: moonshinePresent(input) };
  if (input.setting !== "auto") return { engine: input.setting, reason: "configured (ASR_ENGINE)", ...found };
  if (found.moonshineAvailable) {
    return { engine: "moonshine", reason: "auto: the bundled Moonshine model is present", ...found };
  }
  if (sphinx.available) {
    return { engine: "sphinx", reason: "auto: Moonshine model missing, PocketSphinx is installed", ...found };
  }
  if (found.ctcAvailable) {
    return {
      engine: "ctc",
      reason:
        `auto: Moonshine model missing and PocketSphinx not installed (${SPHINX_INSTALL_LINE} for human speech)`,
      ...found,
    };
  }
  throw new NoAsrEngineError(
    `ASR_ENGINE=auto found no recognizer: the bundled models ${
      modelFolder(input.moonshineModel, input.modelsDir)
    } ` +
      `and ${modelFolder(CTC_MODEL, input.modelsDir)} are missing (check MODELS_DIR); and ${sphinx.message}`,
  );
}

function sphinxModel(c: SphinxConfig): string {
  return `${c.modelDir} + ${c.jsgf ?? c.lm} + ${c.dict}`;
}

/** The recognizers this node knows, the active one marked, each with how to get it. */
export function asrEngineDescriptors(input: EngineChoiceInput, choice: EngineChoice): EngineDescriptor[] {
  const active = choice.engine;
  return [
    {
      kind: "asr",
      name: "moonshine",
      model: modelFolder(input.moonshineModel, input.modelsDir),
      understands: "human English",
      active: active === "moonshine",
      available: choice.moonshineAvailable,
      how_to_enable: choice.moonshineAvailable
        ? "ASR_ENGINE=moonshine (or auto)"
        : `bundled: restore ${modelFolder(input.moonshineModel, input.modelsDir)} (or set MOONSHINE_MODEL)`,
    },
    {
      kind: "asr",
      name: "sphinx",
      model: sphinxModel(input.sphinx),
      understands: "human English",
      active: active === "sphinx",
      available: choice.sphinx.available,
      how_to_enable: choice.sphinx.available
        ? "ASR_ENGINE=sphinx (streaming: cheaper per session than moonshine, less accurate)"
        : `${SPHINX_INSTALL_LINE}, then ASR_ENGINE=sphinx (${choice.sphinx.reason})`,
    },
    {
      kind: "asr",
      name: "ctc",
      model: ctcModel(input),
      understands: "synthetic English only",
      active: active === "ctc",
      available: choice.ctcAvailable,
      how_to_enable: "ASR_ENGINE=ctc (bundled; trained on espeak speech, not for human voices)",
    },
    {
      kind: "asr",
      name: "whisper",
      model: active === "whisper" ? input.model : "a Whisper ONNX folder (e.g. whisper-base.en)",
      understands: "human speech, many languages",
      active: active === "whisper",
      available: active === "whisper",
      how_to_enable:
        "other languages: put a Whisper ONNX model folder under MODELS_DIR, then ASR_ENGINE=whisper ASR_MODEL=<folder>",
    },
  ];
}
