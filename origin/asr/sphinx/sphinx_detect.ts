/**
 * Is PocketSphinx usable here? Checks that the Debian libraries and the model files exist, without loading
 * anything (no dlopen, no model read), so the start-up banner, `/readyz` and `ASR_ENGINE=auto` can ask cheaply.
 *
 * Paths (environment, all optional):
 *  - `SPHINX_MODEL_DIR` acoustic model folder (default `/usr/share/pocketsphinx/model/en-us/en-us`)
 *  - `SPHINX_LM`        n-gram language model, ARPA or binary (default `…/en-us/en-us.lm.bin`)
 *  - `SPHINX_DICT`      pronunciation dictionary (default `…/en-us/cmudict-en-us.dict`)
 *  - `SPHINX_JSGF`      a JSGF grammar file; when set it replaces the n-gram LM (a command vocabulary)
 *  - `SPHINX_LIB_DIR`   folder holding libpocketsphinx.so.3 and libsphinxbase.so.3 (default Debian multiarch)
 *  - `SPHINX_SEARCH`    `live` (default) or `full`: the search settings (see SPHINX_SEARCH_PRESETS)
 *  - `SPHINX_ARGS`      further `-name value` decoder arguments, appended after the preset (they win)
 *  - `SPHINX_IDLE_DECODER_MS` how long a worker keeps a surplus idle decoder (default 60 s)
 *
 * A domain vocabulary (see origin/asr/sphinx/README.md): either a JSGF grammar (`SPHINX_JSGF=/x/cmds.gram`,
 * words must be in the dictionary), or a domain n-gram LM (`SPHINX_LM=/x/domain.lm`, ARPA text is accepted) plus a
 * dictionary holding every LM word (`SPHINX_DICT=/x/domain.dict`, CMUdict format: `word  W ER D`; copy lines from
 * cmudict-en-us.dict, write new words by analogy).
 */
import { defaultSphinxLibDir, sphinxLibraryPaths } from "./sphinx_ffi.ts";
import { parseSphinxArgs, SPHINX_SEARCHES, type SphinxSearch } from "../../../lib/sphinx_args.ts";

export const SPHINX_PACKAGES = ["libpocketsphinx3", "pocketsphinx-en-us"] as const;
export const SPHINX_INSTALL_LINE = `apt-get install ${SPHINX_PACKAGES.join(" ")}`;

const DEFAULT_ROOT = "/usr/share/pocketsphinx/model/en-us";

/**
 * Decoder search settings by name.
 *  - `full`: PocketSphinx's own defaults (what `pocketsphinx_continuous` runs): a tree search while audio
 *    arrives, then a flat-lexicon second pass (`-fwdflat`) over the whole utterance when it ends, then the
 *    lattice best path. The second pass re-decodes the utterance after its last sample, so a session waits for
 *    it in proportion to the utterance's length; and the search keeps up to 30,000 HMMs per frame.
 *  - `live`: no second pass (the result is the tree search's, rescored by the lattice best path) and at most
 *    3,000 active HMMs and 5 word exits per frame (PocketSphinx's absolute pruning). That bounds the cost of
 *    every 10 ms frame, so many sessions decode in real time on few cores and the confirmed result follows the
 *    utterance's end by the best-path step only. These are the knobs CMU's tuning guide names for real-time
 *    decoding; the values were chosen for speed, not on any evaluation transcript (docs in README.md).
 */
export const SPHINX_SEARCH_PRESETS: Readonly<Record<SphinxSearch, readonly string[]>> = {
  live: ["-fwdflat", "no", "-maxhmmpf", "3000", "-maxwpf", "5"],
  full: [],
};

/**
 * The preset's arguments with `SPHINX_ARGS` laid over them: an option named in both takes the `SPHINX_ARGS`
 * value (PocketSphinx refuses an option given twice).
 */
export function sphinxSearchArgs(search: SphinxSearch, extra: readonly string[]): string[] {
  const merged = new Map<string, string>();
  for (const pairs of [SPHINX_SEARCH_PRESETS[search], extra]) {
    for (let i = 0; i + 1 < pairs.length; i += 2) merged.set(pairs[i], pairs[i + 1]);
  }
  return [...merged].flat();
}

export interface SphinxConfig {
  /** Acoustic model folder (mdef, means, variances, transition_matrices, feat.params). */
  modelDir: string;
  /** n-gram LM; ignored when `jsgf` is set. */
  lm: string;
  dict: string;
  /** JSGF grammar that replaces the LM, or undefined. */
  jsgf?: string;
  libDir: string;
  /** Further `-name value` decoder arguments (e.g. `["-beam", "1e-60"]`), passed through unchanged. */
  extraArgs: string[];
  /** How long a worker keeps an idle decoder beyond its warm ones before freeing it (`SPHINX_IDLE_DECODER_MS`). */
  idleDecoderMs: number;
}

/** Long enough that sessions talking on and off reuse the last minute's decoders instead of loading models. */
export const DEFAULT_SPHINX_IDLE_DECODER_MS = 60_000;

export const DEFAULT_SPHINX_CONFIG: SphinxConfig = {
  modelDir: `${DEFAULT_ROOT}/en-us`,
  lm: `${DEFAULT_ROOT}/en-us.lm.bin`,
  dict: `${DEFAULT_ROOT}/cmudict-en-us.dict`,
  libDir: defaultSphinxLibDir(),
  extraArgs: [...SPHINX_SEARCH_PRESETS.live],
  idleDecoderMs: DEFAULT_SPHINX_IDLE_DECODER_MS,
};

/** Build a config from env-like values; unset or empty values keep the Debian defaults. */
export function sphinxConfigFrom(values: {
  SPHINX_MODEL_DIR?: string;
  SPHINX_LM?: string;
  SPHINX_DICT?: string;
  SPHINX_JSGF?: string;
  SPHINX_LIB_DIR?: string;
  SPHINX_SEARCH?: string;
  SPHINX_ARGS?: string;
  SPHINX_IDLE_DECODER_MS?: number | string;
}): SphinxConfig {
  const idle = Number(values.SPHINX_IDLE_DECODER_MS ?? DEFAULT_SPHINX_IDLE_DECODER_MS);
  if (!Number.isInteger(idle) || idle < 0) {
    throw new RangeError(
      `SPHINX_IDLE_DECODER_MS must be a whole number of ms ≥ 0, got "${values.SPHINX_IDLE_DECODER_MS}"`,
    );
  }
  const search = (values.SPHINX_SEARCH?.trim() || "live") as SphinxSearch;
  if (!SPHINX_SEARCHES.includes(search)) {
    throw new RangeError(`SPHINX_SEARCH must be one of ${SPHINX_SEARCHES.join(", ")}, got "${search}"`);
  }
  const pick = (v: string | undefined, d: string) => (v && v.trim() ? v.trim() : d);
  return {
    modelDir: pick(values.SPHINX_MODEL_DIR, DEFAULT_SPHINX_CONFIG.modelDir),
    lm: pick(values.SPHINX_LM, DEFAULT_SPHINX_CONFIG.lm),
    dict: pick(values.SPHINX_DICT, DEFAULT_SPHINX_CONFIG.dict),
    jsgf: values.SPHINX_JSGF?.trim() || undefined,
    libDir: pick(values.SPHINX_LIB_DIR, DEFAULT_SPHINX_CONFIG.libDir),
    extraArgs: sphinxSearchArgs(search, parseSphinxArgs(values.SPHINX_ARGS)),
    idleDecoderMs: idle,
  };
}

/** The config the process environment asks for. */
export function sphinxConfigFromEnv(): SphinxConfig {
  const get = (k: string) => Deno.env.get(k);
  return sphinxConfigFrom({
    SPHINX_MODEL_DIR: get("SPHINX_MODEL_DIR"),
    SPHINX_LM: get("SPHINX_LM"),
    SPHINX_DICT: get("SPHINX_DICT"),
    SPHINX_JSGF: get("SPHINX_JSGF"),
    SPHINX_LIB_DIR: get("SPHINX_LIB_DIR"),
    SPHINX_SEARCH: get("SPHINX_SEARCH"),
    SPHINX_ARGS: get("SPHINX_ARGS"),
    SPHINX_IDLE_DECODER_MS: get("SPHINX_IDLE_DECODER_MS") || undefined,
  });
}

export interface SphinxAvailability {
  available: boolean;
  /** Why not (every missing path), or "" when available. */
  reason: string;
  /** The Debian packages that would supply what is missing at its default place. */
  missingPackages: string[];
  /** One line for a human: what is missing and the `apt-get install` line. */
  message: string;
}

/** Files an acoustic model folder must hold for `ps_init` to load it. */
const MODEL_FILES = ["mdef", "means", "variances", "transition_matrices", "feat.params"];

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

export function detectSphinx(config: SphinxConfig = sphinxConfigFromEnv()): SphinxAvailability {
  const missing: string[] = [];
  const packages = new Set<string>();
  const libs = sphinxLibraryPaths(config.libDir);
  for (const lib of [libs.pocketsphinx, libs.sphinxbase]) {
    if (!isFile(lib)) {
      missing.push(lib);
      packages.add("libpocketsphinx3");
    }
  }
  const need = (path: string, what: string, defaultPath: string) => {
    if (isFile(path)) return;
    missing.push(`${what} ${path}`);
    if (path === defaultPath) packages.add("pocketsphinx-en-us");
  };
  const modelMissing = MODEL_FILES.filter((f) => !isFile(`${config.modelDir}/${f}`));
  if (modelMissing.length) {
    missing.push(`acoustic model ${config.modelDir} (no ${modelMissing.join(", ")})`);
    if (config.modelDir === DEFAULT_SPHINX_CONFIG.modelDir) packages.add("pocketsphinx-en-us");
  }
  if (config.jsgf) need(config.jsgf, "grammar", "");
  else need(config.lm, "language model", DEFAULT_SPHINX_CONFIG.lm);
  need(config.dict, "dictionary", DEFAULT_SPHINX_CONFIG.dict);
  if (!missing.length) {
    return { available: true, reason: "", missingPackages: [], message: "PocketSphinx available" };
  }
  const reason = `missing ${missing.join("; ")}`;
  const missingPackages = SPHINX_PACKAGES.filter((p) => packages.has(p));
  const fix = missingPackages.length
    ? `install the Debian packages: ${SPHINX_INSTALL_LINE}`
    : `fix SPHINX_MODEL_DIR / SPHINX_LM / SPHINX_JSGF / SPHINX_DICT / SPHINX_LIB_DIR (defaults come from: ${SPHINX_INSTALL_LINE})`;
  return {
    available: false,
    reason,
    missingPackages,
    message: `PocketSphinx (human English speech) unavailable: ${reason}; ${fix}`,
  };
}

/**
 * For command-line entry points (benchmarks, `ASR_ENGINE=sphinx` at start-up): the config, or the one-line
 * message on stderr and exit code 2 when PocketSphinx is not installed.
 */
export function sphinxConfigOrExit(config: SphinxConfig = sphinxConfigFromEnv()): SphinxConfig {
  const avail = detectSphinx(config);
  if (!avail.available) {
    console.error(avail.message);
    Deno.exit(2);
  }
  return config;
}
