/**
 * Loads @huggingface/transformers with the two workarounds needed in Deno (STACK-NOTES): in a Web Worker
 * `location.origin` is "null", which breaks its URL handling → hide `location` before the import; and local models
 * are disabled by default there → set `env.allowLocalModels = true`. Model lookup: `modelsDir/<folder>` first,
 * the Hugging Face Hub only when `allowRemoteModels` is true.
 */
export interface TransformersModelConfig {
  /** Folder holding local models (each model in a sub-folder in Transformers.js layout). */
  modelsDir: string;
  /** Allow downloading from the Hub (ids like `onnx-community/whisper-base`). */
  allowRemoteModels: boolean;
  /** Cache dir for downloaded models. */
  cacheDir?: string;
}

// deno-lint-ignore no-explicit-any
type TransformersModule = any;
let loaded: Promise<TransformersModule> | null = null;

export function loadTransformers(cfg: TransformersModelConfig): Promise<TransformersModule> {
  if (!loaded) {
    loaded = (async () => {
      const g = globalThis as { location?: unknown };
      if ("location" in globalThis) {
        try {
          Object.defineProperty(globalThis, "location", {
            value: undefined,
            configurable: true,
            writable: true,
          });
        } catch {
          g.location = undefined;
        }
      }
      return await import("@huggingface/transformers");
    })();
  }
  return loaded.then((t) => {
    t.env.allowLocalModels = true;
    t.env.allowRemoteModels = cfg.allowRemoteModels;
    t.env.localModelPath = cfg.modelsDir.endsWith("/") ? cfg.modelsDir : cfg.modelsDir + "/";
    if (cfg.cacheDir) t.env.cacheDir = cfg.cacheDir;
    return t;
  });
}
