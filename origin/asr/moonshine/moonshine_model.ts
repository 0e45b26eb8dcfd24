/**
 * A Moonshine speech-to-text model (encoder + merged decoder ONNX graphs, the layout of the Hugging Face
 * `onnx-community/moonshine-*-ONNX` exports and of the npm package @moonshine-ai/moonshine-js) run with
 * onnxruntime: the encoder once per segment, then greedy decoding with the key/value cache.
 *
 * The layer count, key/value heads and head size are read from the decoder's `past_key_values.*` inputs, so the
 * tiny and base models load alike. Token ids only: text is ./moonshine_engine.ts's job.
 */
import * as ort from "onnxruntime-node";
import { existsSync } from "node:fs";
import { ClosedError } from "../../../lib/closed_error.ts";
import { MoonshineModelError } from "./moonshine_errors.ts";
import { MOONSHINE_FILES } from "./moonshine_files.ts";
import { registry } from "../../../lib/metrics.ts";
import { log } from "../../../lib/log.ts";

/** The model's decoder start (BOS) and end-of-sequence token ids. */
const START_TOKEN = 1;
const EOS_TOKEN = 2;
/**
 * Generation stops after this many tokens per second of audio: speech runs at 2–4 tokens a second, so a decode
 * that reaches it is repeating itself (the bound moonshine-js uses).
 */
const MAX_TOKENS_PER_SECOND = 6;
/** ...but never fewer than this: "Bye." in half a second is three tokens and the end token. */
const MIN_TOKEN_BOUND = 8;
/** The encoder's three strided convolutions need at least this much audio; shorter input is padded with zeros. */
export const MOONSHINE_MIN_SAMPLES = 8000;

const log_ = log.child({ component: "moonshine" });
const mLoaded = registry.gauge(
  "parley_moonshine_models_loaded",
  "Moonshine models (onnxruntime session pairs) alive",
);
const mDecodes = registry.counter(
  "parley_moonshine_decodes_total",
  "Moonshine decodes by outcome (ended: end token; token_bound: stopped repeating itself)",
);
const mTokens = registry.counter("parley_moonshine_tokens_total", "Tokens Moonshine generated");
const mAudio = registry.counter("parley_moonshine_audio_seconds_total", "Audio Moonshine decoded, s");

export interface MoonshineDecode {
  /** Generated ids, without the start and end tokens. */
  tokens: number[];
  /** Natural-log probability of each generated id (and of the end token, last, when it was reached). */
  logProbs: number[];
  /** Whether the decode ended with the end token (false: stopped at the token bound). */
  ended: boolean;
}

interface CacheShape {
  layers: number;
  heads: number;
  headDim: number;
}

function cacheShape(decoder: ort.InferenceSession, dir: string): CacheShape {
  const names = decoder.inputNames.filter((n) => /^past_key_values\.\d+\.decoder\.key$/.test(n));
  // deno-lint-ignore no-explicit-any
  const meta = (decoder as any).inputMetadata as Array<{ name: string; shape?: unknown[] }> | undefined;
  const shape = meta?.find((m) => m.name === "past_key_values.0.decoder.key")?.shape;
  const heads = shape?.[1], headDim = shape?.[3];
  if (!names.length || typeof heads !== "number" || typeof headDim !== "number") {
    throw new MoonshineModelError(`${dir}/decoder_model_merged.onnx is not a Moonshine merged decoder`);
  }
  return { layers: names.length, heads, headDim };
}

export class MoonshineModel {
  private constructor(
    readonly dir: string,
    private encoder: ort.InferenceSession | null,
    private decoder: ort.InferenceSession | null,
    private readonly shape: CacheShape,
  ) {
    mLoaded.inc();
  }

  /** The decode running now: dispose waits for it before freeing the sessions it uses. */
  private running: Promise<unknown> = Promise.resolve();

  static async load(
    dir: string,
    opts: { intraOpNumThreads?: number; foldWeights?: boolean } = {},
  ): Promise<MoonshineModel> {
    const missing = MOONSHINE_FILES.filter((f) => !existsSync(`${dir}/${f}`));
    if (missing.length) {
      throw new MoonshineModelError(`Moonshine model folder ${dir} lacks ${missing.join(", ")}`);
    }
    const so: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: opts.intraOpNumThreads ?? 1,
      interOpNumThreads: 1,
      // The int8 export dequantizes constant weights (DequantizeLinear on initializers) on every run: 40 % of a
      // decoder step. With the QDQ transformers off, onnxruntime's constant folding turns them into float
      // weights once, at load (docs/recognition.md has the figures).
      ...(opts.foldWeights ?? true ? { extra: { session: { disable_quant_qdq: "1" } } } : {}),
    };
    const t0 = performance.now();
    const encoder = await ort.InferenceSession.create(`${dir}/encoder_model.onnx`, so);
    let decoder: ort.InferenceSession | undefined;
    try {
      decoder = await ort.InferenceSession.create(`${dir}/decoder_model_merged.onnx`, so);
      const m = new MoonshineModel(dir, encoder, decoder, cacheShape(decoder, dir));
      log_.info("moonshine model loaded", { dir, ...m.shape, ms: Math.round(performance.now() - t0) });
      return m;
    } catch (e) {
      await encoder.release();
      await decoder?.release();
      throw e;
    }
  }

  /** Greedy decode of one 16 kHz mono segment. */
  decode(pcm16k: Float32Array): Promise<MoonshineDecode> {
    const e = this.encoder, d = this.decoder;
    if (!e || !d) return Promise.reject(new ClosedError("moonshine model", "disposed"));
    // one decode at a time; dispose waits for this chain, so the sessions outlive every decode queued on them
    const run = this.running.then(() => this.greedy(e, d, pcm16k));
    this.running = run.catch(() => {});
    return run;
  }

  private async greedy(
    encoder: ort.InferenceSession,
    decoder: ort.InferenceSession,
    pcm16k: Float32Array,
  ): Promise<MoonshineDecode> {
    let audio = pcm16k;
    if (audio.length < MOONSHINE_MIN_SAMPLES) {
      audio = new Float32Array(MOONSHINE_MIN_SAMPLES);
      audio.set(pcm16k);
    }
    const limit = Math.max(MIN_TOKEN_BOUND, Math.trunc((audio.length / 16000) * MAX_TOKENS_PER_SECOND));
    const encoded = await encoder.run({ input_values: new ort.Tensor("float32", audio, [1, audio.length]) });
    const hidden = encoded.last_hidden_state;
    const { layers, heads, headDim } = this.shape;
    const past: Record<string, ort.Tensor> = {};
    for (let i = 0; i < layers; i++) {
      for (const part of ["decoder", "encoder"]) {
        for (const kv of ["key", "value"]) {
          past[`past_key_values.${i}.${part}.${kv}`] = new ort.Tensor("float32", new Float32Array(0), [
            1,
            heads,
            0,
            headDim,
          ]);
        }
      }
    }
    const out: MoonshineDecode = { tokens: [], logProbs: [], ended: false };
    let next = START_TOKEN;
    for (let step = 0; step < limit; step++) {
      const r = await decoder.run({
        input_ids: new ort.Tensor("int64", BigInt64Array.of(BigInt(next)), [1, 1]),
        encoder_hidden_states: hidden,
        use_cache_branch: new ort.Tensor("bool", [step > 0]),
        ...past,
      });
      const logits = r.logits.data as Float32Array;
      const vocab = r.logits.dims[2];
      const off = logits.length - vocab;
      let best = 0;
      for (let k = 1; k < vocab; k++) if (logits[off + k] > logits[off + best]) best = k;
      let sum = 0;
      for (let k = 0; k < vocab; k++) sum += Math.exp(logits[off + k] - logits[off + best]);
      out.logProbs.push(-Math.log(sum));
      // the encoder half of the cache is computed on the first step only; the decoder half grows each step
      for (const name of Object.keys(past)) {
        if (step === 0 || name.includes(".decoder.")) {
          past[name] = r[name.replace("past_key_values", "present")];
        }
      }
      if (best === EOS_TOKEN) {
        out.ended = true;
        break;
      }
      out.tokens.push(best);
      next = best;
    }
    mDecodes.inc({ outcome: out.ended ? "ended" : "token_bound" });
    mTokens.inc(undefined, out.tokens.length);
    mAudio.inc(undefined, pcm16k.length / 16000);
    return out;
  }

  /** Frees both onnxruntime sessions once the decode in flight (if any) is done (idempotent). */
  async dispose(): Promise<void> {
    const e = this.encoder, d = this.decoder;
    if (!e || !d) return;
    this.encoder = this.decoder = null;
    await this.running;
    await e.release();
    await d.release();
    mLoaded.dec();
  }
}
