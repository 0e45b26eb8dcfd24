/**
 * Word-timing accuracy of the PocketSphinx decoder: espeak-ng (WASM, origin/tts/espeak_engine.ts) synthesizes
 * sentences and reports where each word starts in its audio; the decoder's word starts are compared with those.
 *
 *  - `lm`:      the normal decoder (en-us LM); only words recognized correctly (aligned by word equality) count
 *  - `grammar`: the decoder constrained by a JSGF grammar of the sentence itself (forced alignment), all words
 *
 *   deno task bench sphinx_timing        or        deno run -A bench/sphinx_timing.ts [--json]
 *
 * Exits 1 when the median |start error| of the `grammar` run exceeds 60 ms.
 */
import { EspeakEngine } from "../origin/tts/espeak_engine.ts";
import { SphinxDecoder, type SphinxWord } from "../origin/asr/sphinx/sphinx_decoder.ts";
import { toInt16 } from "../origin/asr/sphinx/sphinx_engine.ts";
import { type SphinxConfig, sphinxConfigOrExit } from "../origin/asr/sphinx/sphinx_detect.ts";

export const TIMING_SENTENCES = [
  "please turn on the kitchen lights and open the window",
  "the quick brown fox jumps over the lazy dog",
  "we will meet at the station before the train leaves",
  "my phone number is four five six seven eight nine",
  "she bought three apples and a loaf of bread",
];

const GOAL_MS = 60;

/** 22050 Hz (espeak) → 16 kHz with sox. */
async function to16k(pcm: Int16Array, rate: number): Promise<Int16Array> {
  const raw = ["-t", "raw", "-e", "signed", "-b", "16", "-c", "1"];
  const child = new Deno.Command("sox", {
    args: [...raw, "-r", String(rate), "-", ...raw, "-r", "16000", "-"],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength));
  await w.close();
  const out = await child.output();
  return new Int16Array(out.stdout.buffer, out.stdout.byteOffset, out.stdout.byteLength >> 1);
}

/** Pairs of equal words in order (longest common subsequence), as index pairs [ref, hyp]. */
export function matchWords(ref: string[], hyp: string[]): Array<[number, number]> {
  const L = Array.from({ length: ref.length + 1 }, () => new Array<number>(hyp.length + 1).fill(0));
  for (let i = ref.length - 1; i >= 0; i--) {
    for (let j = hyp.length - 1; j >= 0; j--) {
      L[i][j] = ref[i] === hyp[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
    }
  }
  const pairs: Array<[number, number]> = [];
  for (let i = 0, j = 0; i < ref.length && j < hyp.length;) {
    if (ref[i] === hyp[j]) pairs.push([i++, j++]);
    else if (L[i + 1][j] >= L[i][j + 1]) i++;
    else j++;
  }
  return pairs;
}

function decode(config: SphinxConfig, pcm: Int16Array): SphinxWord[] {
  const d = SphinxDecoder.open(config);
  try {
    d.start();
    for (let i = 0; i < pcm.length; i += 1600) d.process(pcm.subarray(i, i + 1600));
    return d.finish().words;
  } finally {
    d.close();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

export async function measureTiming(config: SphinxConfig) {
  const espeak = await EspeakEngine.load("en-us");
  const errors = { lm: [] as number[], grammar: [] as number[] };
  let refWords = 0;
  const dir = await Deno.makeTempDir({ prefix: "parley-sphinx-timing-" });
  try {
    for (const [k, text] of TIMING_SENTENCES.entries()) {
      const syn = await espeak.synthesize(text);
      const pcm = await to16k(toInt16(syn.pcm), syn.sampleRate);
      const truth = syn.words.map((w) => ({
        text: w.text.toLowerCase().replace(/[^a-z']/g, ""),
        start: w.start_ms,
      }));
      refWords += truth.length;
      const gram = `${dir}/s${k}.gram`;
      await Deno.writeTextFile(
        gram,
        `#JSGF V1.0;\ngrammar s;\npublic <s> = ${truth.map((w) => w.text).join(" ")};\n`,
      );
      for (const mode of ["lm", "grammar"] as const) {
        const words = decode(mode === "grammar" ? { ...config, jsgf: gram } : config, pcm);
        for (const [i, j] of matchWords(truth.map((w) => w.text), words.map((w) => w.text))) {
          errors[mode].push(Math.abs(words[j].start_ms - truth[i].start));
        }
      }
    }
  } finally {
    await espeak.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return {
    refWords,
    lm: {
      matched: errors.lm.length,
      medianMs: median(errors.lm),
      p90Ms: errors.lm.sort((a, b) => a - b)[Math.floor(0.9 * errors.lm.length)],
    },
    grammar: {
      matched: errors.grammar.length,
      medianMs: median(errors.grammar),
      p90Ms: errors.grammar.sort((a, b) => a - b)[Math.floor(0.9 * errors.grammar.length)],
    },
  };
}

if (import.meta.main) {
  const config = sphinxConfigOrExit();
  const r = await measureTiming(config);
  if (Deno.args.includes("--json")) console.log(JSON.stringify(r));
  else {
    console.log(
      `espeak-ng en-us, ${TIMING_SENTENCES.length} sentences, ${r.refWords} words; |sphinx start − espeak start|:`,
    );
    console.log(`| decoder | words timed | median ms | p90 ms |\n| --- | --- | --- | --- |`);
    for (const m of ["lm", "grammar"] as const) {
      console.log(`| ${m} | ${r[m].matched} | ${r[m].medianMs.toFixed(0)} | ${r[m].p90Ms?.toFixed(0)} |`);
    }
  }
  if (!(r.grammar.medianMs <= GOAL_MS)) {
    console.error(`median start error ${r.grammar.medianMs} ms > ${GOAL_MS} ms`);
    Deno.exit(1);
  }
}
