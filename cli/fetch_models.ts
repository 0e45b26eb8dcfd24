/**
 * Pre-fetch Hugging Face Hub models for air-gapped installs (run this on a machine WITH internet):
 *
 *   deno task models:fetch onnx-community/whisper-base.en [Xenova/mms-tts-eng …]
 *
 * Files land in ./data/models/<model id>/… (the Transformers.js local-model layout). Copy that folder to the
 * offline machine and start Parley with
 *   MODELS_DIR=./data/models ASR_ENGINE=whisper ASR_MODEL=onnx-community/whisper-base.en deno task start
 * (ALLOW_REMOTE_MODELS stays false: nothing is downloaded at run time). The bundled models in ./models need no
 * fetching. This command is the only place in Parley that downloads models; CI never runs it.
 */
import { loadTransformers } from "../origin/asr/transformers_env.ts";

const TASKS: Array<[RegExp, string]> = [
  [/whisper|wav2vec2|asr/i, "automatic-speech-recognition"],
  [/tts|vits|mms/i, "text-to-audio"],
];

export async function fetchModels(ids: string[], dest = "./data/models"): Promise<void> {
  await Deno.mkdir(dest, { recursive: true });
  // Download through the Hub into the cache, which uses the same <id>/<file> layout as local models.
  const t = await loadTransformers({ modelsDir: dest, allowRemoteModels: true, cacheDir: dest });
  t.env.useFSCache = true;
  for (const id of ids) {
    const task = TASKS.find(([re]) => re.test(id))?.[1];
    if (!task) {
      throw new Error(`cannot tell the task of ${id}: name a whisper/wav2vec2 (ASR) or tts/vits model`);
    }
    const t0 = performance.now();
    console.log(`fetching ${id} (${task}) into ${dest}/${id} …`);
    const p = await t.pipeline(task, id, { dtype: "fp32" });
    await p.dispose?.();
    console.log(`  done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
}

if (import.meta.main) {
  if (Deno.args.length === 0) {
    console.error("usage: deno task models:fetch <hub model id> [more ids]");
    Deno.exit(2);
  }
  try {
    await fetchModels(Deno.args);
  } catch (e) {
    console.error(`models:fetch: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
