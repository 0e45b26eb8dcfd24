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
 *
 * A domain vocabulary (see origin/asr/sphinx/README.md): either a JSGF grammar (`SPHINX_JSGF=/x/cmds.gram`,
 * words must be in the dictionary), or a domain n-gram LM (`SPHINX_LM=/x/domain.lm`, ARPA text is accepted) plus a
 * dictionary holding every LM word (`SPHINX_DICT=/x/domain.dict`, CMUdict format: `word  W ER D`; copy lines from
 * cmudict-en-us.dict, write new words by analogy).
 */
import { defaultSphinxLibDir, sphinxLibraryPaths } from "./sphinx_ffi.ts";

export const SPHINX_PACKAGES = ["libpocketsphinx3", "pocketsphinx-en-us"] as const;
export const SPHINX_INSTALL_LINE = `apt-get install ${SPHINX_PACKAGES.join(" ")}`;

const DEFAULT_ROOT = "/usr/share/pocketsphinx/model/en-us";

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
}

export const DEFAULT_SPHINX_CONFIG: SphinxConfig = {
  modelDir: `${DEFAULT_ROOT}/en-us`,
  lm: `${DEFAULT_ROOT}/en-us.lm.bin`,
  dict: `${DEFAULT_ROOT}/cmudict-en-us.dict`,
  libDir: defaultSphinxLibDir(),
  extraArgs: [],
};

/** Build a config from env-like values; unset or empty values keep the Debian defaults. */
export function sphinxConfigFrom(values: {
  SPHINX_MODEL_DIR?: string;
  SPHINX_LM?: string;
  SPHINX_DICT?: string;
  SPHINX_JSGF?: string;
  SPHINX_LIB_DIR?: string;
}): SphinxConfig {
  const pick = (v: string | undefined, d: string) => (v && v.trim() ? v.trim() : d);
  return {
    modelDir: pick(values.SPHINX_MODEL_DIR, DEFAULT_SPHINX_CONFIG.modelDir),
    lm: pick(values.SPHINX_LM, DEFAULT_SPHINX_CONFIG.lm),
    dict: pick(values.SPHINX_DICT, DEFAULT_SPHINX_CONFIG.dict),
    jsgf: values.SPHINX_JSGF?.trim() || undefined,
    libDir: pick(values.SPHINX_LIB_DIR, DEFAULT_SPHINX_CONFIG.libDir),
    extraArgs: [],
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
