/**
 * `deno task bench voice_judge_live`: issue 18's live-session judge. A real `main.ts all` process (edge + origin,
 * PGlite in a temp dir) speaks each held-out sentence with `say` on a live WebRTC session; a WebRTC client
 * (TestClient, wrtc) records the audio it receives (Opus, 48 kHz); each sentence's recording is judged by the
 * PocketSphinx CLI like bench/voice_judge.ts. Beside it, the same sentences synthesized directly by the engine
 * (the voice_judge figure): the live figure should be within 3 points (48 kHz resampling and Opus spoil nothing).
 *
 * Flags: `--limit N` (first N held-out sentences, default 10), `--voices flite:rms,espeak:en-us`, `--keep DIR`
 * (keep the 16 kHz WAVs there, with `<voice>.tsv`: sentence, live and direct hypotheses, errors of each),
 * `--wait-s S` (longest play-out of one sentence, default 60), `--from K` (skip the first K sentences).
 */
import { EspeakEngine } from "../origin/tts/espeak_engine.ts";
import { FliteEngine } from "../origin/tts/flite/engine.ts";
import { TestClient } from "../origin/session/test_client.ts";
import type { UtteranceEvent } from "../protocol/session_messages.ts";
import { call, freePort, ParleyProcess, waitReady } from "../tests/e2e/stack_process.ts";
import { heldOutSentences, score, transcribeBatch, write16k } from "./sphinx_judge.ts";

const arg = (name: string) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
};
const from = Number(arg("--from") ?? 0);
const sentences = (await heldOutSentences(from + Number(arg("--limit") ?? 10))).slice(from);
const voices = (arg("--voices") ?? "flite:rms,espeak:en-us").split(",");
/** Audio kept after the last `finished` event: the last packets are still in flight. */
const TAIL_MS = 600;
/** A sentence's recording ends after this much received quiet (longer than any pause inside a sentence). */
const QUIET_MS = 700;
/** How long one sentence may take to play out (`--wait-s`; a loaded shared machine stalls for many seconds). */
const WAIT_MS = Number(arg("--wait-s") ?? 60) * 1000;

const keep = arg("--keep");
if (keep) await Deno.mkdir(keep, { recursive: true });
const dir = keep ?? await Deno.makeTempDir({ prefix: "voice-judge-live-" });

/** Starts `main.ts all`; a start that fails (e.g. a port taken meanwhile by another process) is retried. */
async function start(): Promise<{ proc: ParleyProcess; url: string; key: string }> {
  for (let attempt = 1;; attempt++) {
    const port = freePort();
    const proc = new ParleyProcess("all", {
      DATA_DIR: `${dir}/data${attempt}`,
      PORT: String(port),
      ORIGIN_PORT: String(freePort()),
      RATE_LIMIT_RPS: "1000",
      RATE_LIMIT_BURST: "1000",
      LOG_LEVEL: "error",
      ASR_ENGINE: "ctc",
      // the client's microphone is digital silence, which Opus may not send at all (DTX): no media timeout
      MEDIA_TIMEOUT_MS: "3600000",
    });
    const url = `http://127.0.0.1:${port}`;
    const exited = proc.status().then((s) => {
      throw new Error(`main.ts all exited (${s.code}): ${proc.stderr.slice(-500)}`);
    });
    try {
      // generous: a loaded shared machine starts slowly, and this is a benchmark, not a start-up test
      const key =
        (await Promise.race([proc.waitFor(/First admin API key[^:]*: (pk_\S+)/, 600_000), exited]))[1];
      await Promise.race([waitReady(url, 600_000), exited]);
      await Promise.race([proc.waitFor(/Parley \(edge \+ origin\) ready/, 600_000), exited]);
      exited.catch(() => {});
      return { proc, url, key };
    } catch (e) {
      exited.catch(() => {});
      proc.kill("SIGTERM");
      await proc.status();
      if (attempt >= 3) throw e;
      console.error(`start failed, retrying: ${String(e).slice(0, 300)}`);
    }
  }
}
const began = performance.now();
const { proc, url, key } = await start();

/**
 * Each sentence spoken with `say` on a live session in `voice`, recorded at the client: `<prefix>-<i>.wav`. A
 * sentence that does not play out within WAIT_MS (the shared machine stalls at times) is left out of the score
 * (`stalled`, printed) and the next one is spoken on a new session.
 */
async function speakLive(voice: string, prefix: string): Promise<{ audioS: number; stalled: number[] }> {
  let audioS = 0;
  const stalled: number[] = [];
  let session: { c: TestClient; id: string } | null = null;
  const open = async () => {
    const c = new TestClient({ audio: "silence", record: true });
    const r = await call(url, "POST", "/v1/sessions", key, {
      sdp: await c.offer(),
      options: { mode: "say", voice, barge_in: false },
    });
    if (r.status !== 201) throw new Error(`POST /v1/sessions → ${r.status} ${r.text}`);
    const body = r.body as { id: string; sdp: string };
    session = { c, id: body.id };
    await c.accept(body.sdp);
    await c.waitForEvent("state", (e) => e.state === "active", 30_000);
    await c.waitFor(() => c.control.readyState === "open", 30_000, "control channel open");
    return session;
  };
  const shut = async () => {
    const s = session;
    session = null;
    if (!s) return;
    s.c.close();
    await call(url, "DELETE", `/v1/sessions/${s.id}`, key).catch(() => {});
  };
  try {
    for (const [i, s] of sentences.entries()) {
      const { c } = session ?? await open();
      const count = (phase: UtteranceEvent["phase"], from: number) =>
        c.received.slice(from).filter((e) => e.type === "utterance" && e.phase === phase).length;
      const from = c.received.length;
      c.takeRecording(); // drop the silence in between
      c.send({ type: "say", text: s });
      // a sentence may be several utterances (the say's lead piece, then the rest): done when every started one
      // has finished and nothing new starts within TAIL_MS (whose audio is still in flight)
      const done = () => count("finished", from) > 0 && count("finished", from) >= count("started", from);
      let ok = true;
      for (;;) {
        ok = await c.waitFor(() => done() || c.received.slice(from).some((e) => e.type === "error"), WAIT_MS)
          .then(() => true, () => false);
        if (!ok) break;
        const err = c.received.slice(from).find((e) => e.type === "error");
        if (err) throw new Error(`say failed: ${JSON.stringify(err)}`);
        const started = count("started", from);
        await new Promise((res) => setTimeout(res, TAIL_MS));
        if (count("started", from) === started && done()) break;
      }
      if (!ok) {
        const seen = c.received.slice(from).map((e) =>
          e.type === "utterance" ? `utterance:${e.phase}` : e.type
        );
        console.error(
          `sentence ${i} in ${voice} did not play out in ${WAIT_MS} ms (${seen.join(" ")}): left out`,
        );
        stalled.push(i);
        await write16k(dir, new Int16Array(1600), 16000, `${prefix}-${i}`); // a placeholder, not scored
        await shut();
        continue;
      }
      // the audio lags the events (jitter buffer, a loaded machine): record on until it has been quiet for a while,
      // or the end of this sentence is cut off and heard at the start of the next one
      let loud = c.loudFrames, quietSince = performance.now();
      const until = performance.now() + 10_000;
      while (performance.now() < until && performance.now() - quietSince < QUIET_MS) {
        await new Promise((res) => setTimeout(res, 50));
        if (c.loudFrames !== loud) [loud, quietSince] = [c.loudFrames, performance.now()];
      }
      const pcm = c.takeRecording();
      audioS += pcm.length / c.recordedRate;
      await write16k(dir, pcm, c.recordedRate, `${prefix}-${i}`);
    }
  } finally {
    await shut();
  }
  return { audioS, stalled };
}

/** The same sentences from the engine itself (bench/voice_judge.ts's path): `<prefix>-<i>.wav`. */
async function speakDirect(voice: string, prefix: string): Promise<void> {
  const [engine, id] = voice.split(":");
  const e = engine === "flite" ? await FliteEngine.load({ warmUp: false }) : await EspeakEngine.load(id);
  try {
    for (const [i, s] of sentences.entries()) {
      const r = await e.synthesize(s, id);
      await write16k(dir, r.pcm, r.sampleRate, `${prefix}-${i}`);
    }
  } finally {
    await e.close();
  }
}

const rows: string[] = [];
try {
  for (const [vi, voice] of voices.entries()) {
    const live = await speakLive(voice, `live${vi}`);
    await speakDirect(voice, `direct${vi}`);
    const [lh, dh] = await Promise.all([
      transcribeBatch(dir, `live${vi}`, sentences.length),
      transcribeBatch(dir, `direct${vi}`, sentences.length),
    ]);
    const kept = sentences.flatMap((_, i) => live.stalled.includes(i) ? [] : [i]);
    const pick = <T>(xs: readonly T[]) => kept.map((i) => xs[i]);
    const [l, d] = [score(pick(sentences), pick(lh)), score(pick(sentences), pick(dh))];
    if (keep) {
      const errs = (h: string, i: number) => score([sentences[i]], [h]).errors;
      await Deno.writeTextFile(
        `${dir}/${voice.replace(":", "_")}.tsv`,
        "i\tsentence\tlive\tdirect\tlive_errors\tdirect_errors\n" +
          sentences.map((s, i) => [i, s, lh[i], dh[i], errs(lh[i], i), errs(dh[i], i)].join("\t")).join(
            "\n",
          ) + "\n",
      );
    }
    const pct = (x: { errors: number; words: number }) => (100 * x.errors / x.words).toFixed(1);
    console.log(
      `${voice}: live WER ${pct(l)} % (${l.errors}/${l.words}), direct ${
        pct(d)
      } %, over ${kept.length} sentences` +
        (live.stalled.length ? ` (${live.stalled.length} stalled, left out: ${live.stalled.join(" ")})` : ""),
    );
    rows.push(
      `| ${voice} | ${pct(d)} % | ${pct(l)} % (${l.errors} / ${l.words}) | ${
        (+pct(l) - +pct(d)).toFixed(1)
      } | ${live.audioS.toFixed(1)} |`,
    );
  }
} finally {
  proc.kill("SIGTERM");
  await proc.status();
  if (!keep) await Deno.remove(dir, { recursive: true });
}
console.log(
  `\nlive-session judge: ${sentences.length} held-out sentences, PocketSphinx en-us (pocketsphinx_batch)`,
);
console.log(`wall time ${((performance.now() - began) / 1000).toFixed(0)} s`);
console.log(`load average: ${Deno.loadavg().map((x) => x.toFixed(1)).join(" ")}`);
console.log("| voice | direct WER | live WER (errors / words) | live − direct, points | live audio s |");
console.log("|---|---|---|---|---|");
for (const r of rows) console.log(r);
Deno.exit(0); // a failed start attempt may leave a poller behind
