/**
 * `deno task bench speech_judge`: are a TTS job's chunks, joined, as intelligible as the engine's whole sentence?
 * A job's first chunk is the lead piece of its first sentence (protocol/tts_text.ts) and the pauses at the cut
 * are trimmed (origin/tts_jobs/chunk_trim.ts), so every cut sentence is two syntheses played back to back. Each
 * held-out sentence goes through `POST /v1/audio/speech` (WAV, default voice flite rms) of a real `main.ts all`,
 * and through the engine directly (the whole sentence, one synthesis); both are judged by the PocketSphinx CLI
 * (bench/sphinx_judge.ts), side by side in one run. Also reported: how many sentences were cut, and the audio
 * length of each path (a join with an engine's sentence pauses left in would make the job's audio longer).
 *
 *   deno run -A --unstable-worker-options bench/speech_judge.ts [--limit N]
 */
import { FliteEngine } from "../origin/tts/flite/engine.ts";
import { chunkText } from "../protocol/tts_text.ts";
import { startProcessStack } from "../tests/web/stack.ts";
import { heldOutSentences, score, transcribeBatch, write16k } from "./sphinx_judge.ts";

const i = Deno.args.indexOf("--limit");
const sentences = await heldOutSentences(i >= 0 ? Number(Deno.args[i + 1]) : 100);
const dir = await Deno.makeTempDir({ prefix: "speech-judge-" });
const loadavg = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");

function wavPcm(bytes: Uint8Array): { pcm: Int16Array; sampleRate: number } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 12, rate = 0;
  while (at + 8 <= bytes.length) {
    const id = String.fromCharCode(...bytes.subarray(at, at + 4));
    const size = dv.getUint32(at + 4, true);
    if (id === "fmt ") rate = dv.getUint32(at + 12, true);
    if (id === "data") {
      const n = Math.min(size, bytes.length - at - 8) >> 1;
      const pcm = new Int16Array(n);
      for (let k = 0; k < n; k++) pcm[k] = dv.getInt16(at + 8 + 2 * k, true);
      return { pcm, sampleRate: rate };
    }
    at += 8 + size + (size & 1);
  }
  throw new Error("no data chunk");
}

console.log(`load average before: ${loadavg()}`);
const stack = await startProcessStack({ RATE_LIMIT_RPS: "1000", RATE_LIMIT_BURST: "1000" }, {
  readyMs: 400_000,
});
let jobSeconds = 0, directSeconds = 0;
try {
  for (const [k, s] of sentences.entries()) {
    const res = await fetch(`${stack.url}/v1/audio/speech`, {
      method: "POST",
      headers: { authorization: `Bearer ${stack.adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "tts-1", voice: "alloy", input: s, response_format: "wav" }),
    });
    if (!res.ok) throw new Error(`speech ${res.status}: ${await res.text()}`);
    const { pcm, sampleRate } = wavPcm(new Uint8Array(await res.arrayBuffer()));
    jobSeconds += pcm.length / sampleRate;
    await write16k(dir, pcm, sampleRate, `job-${k}`);
  }
} finally {
  await stack.close();
}
const flite = await FliteEngine.load();
try {
  for (const [k, s] of sentences.entries()) {
    const r = await flite.synthesize(s, "rms");
    directSeconds += r.pcm.length / r.sampleRate;
    await write16k(dir, r.pcm, r.sampleRate, `direct-${k}`);
  }
} finally {
  await flite.close();
}
const [jh, dh] = await Promise.all([
  transcribeBatch(dir, "job", sentences.length),
  transcribeBatch(dir, "direct", sentences.length),
]);
const cut = sentences.filter((s) => chunkText(s).length > 1).length;
const pct = (x: { errors: number; words: number }) => (100 * x.errors / x.words).toFixed(1);
const j = score(sentences, jh), d = score(sentences, dh);
const cutIdx = sentences.flatMap((s, k) => chunkText(s).length > 1 ? [k] : []);
const pick = <T>(xs: readonly T[]) => cutIdx.map((k) => xs[k]);
console.log(
  `${sentences.length} held-out sentences, ${cut} cut into a lead chunk and the rest; load ${loadavg()}`,
);
console.log("| path | WER, all | WER, cut sentences | audio s |");
console.log("|---|---|---|---|");
console.log(
  `| /v1/audio/speech (job chunks, flite rms) | ${pct(j)} % | ${pct(score(pick(sentences), pick(jh)))} % | ${
    jobSeconds.toFixed(1)
  } |`,
);
console.log(
  `| engine, whole sentence (flite rms) | ${pct(d)} % | ${pct(score(pick(sentences), pick(dh)))} % | ${
    directSeconds.toFixed(1)
  } |`,
);
await Deno.remove(dir, { recursive: true });
