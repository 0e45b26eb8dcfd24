/**
 * The `live` column of bench/human_asr.ts: each human recording played into its own live WebRTC session
 * (Opus, real time) of a real `main.ts all` process (edge + origin, PGlite in a temp dir) with the configured
 * recognizer (default ASR_ENGINE=sphinx); the session's confirmed transcripts, in segment order, are the
 * result. The recording is preceded by 0.5 s of silence (a session's audio path — the client's Opus encoder,
 * the receiver's jitter buffer — starts with the first frame, and several recordings start speaking within
 * 150 ms: their first word was cut) and followed by 1.5 s of silence so its last segment ends.
 */
import type { AsrSystem, SystemResult } from "./human_asr.ts";
import type { HumanRecording } from "./human_corpus.ts";
import { readWav16k } from "../origin/asr/sphinx/sphinx_testdata.ts";
import { floatToInt16, int16ToFloat, resampleAll } from "../lib/audio/resampler.ts";
import { TestClient } from "../origin/session/test_client.ts";
import type { TranscriptEvent } from "../protocol/session_messages.ts";
import { call, freePort, ParleyProcess, waitReady } from "../tests/e2e/stack_process.ts";

const LEAD_MS = 500;
const TAIL_MS = 1500;

/** `--live-quiet-ms N`: how long a session must stay silent (no transcript event) before it is ended. */
function quietWindowMs(): number {
  const i = Deno.args.indexOf("--live-quiet-ms");
  return i >= 0 ? Number(Deno.args[i + 1]) : 20_000;
}

export async function liveSessionSystem(env: Record<string, string> = {}): Promise<AsrSystem> {
  const quietMs = quietWindowMs();
  const port = freePort();
  const engine = env.ASR_ENGINE ?? "sphinx";
  const proc = new ParleyProcess("all", {
    DATA_DIR: await Deno.makeTempDir({ prefix: "parley-human-live-" }),
    PORT: String(port),
    ORIGIN_PORT: String(freePort()),
    RATE_LIMIT_RPS: "1000",
    RATE_LIMIT_BURST: "1000",
    LOG_LEVEL: "error",
    ...env,
    ASR_ENGINE: engine,
  });
  const key = (await proc.waitFor(/First admin API key[^:]*: (pk_\S+)/, 180_000))[1];
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, 180_000);
  await proc.waitFor(/Parley \(edge \+ origin\) ready/, 180_000);
  return {
    name: engine === "sphinx" ? "live" : `live_${engine}`,
    what: `live WebRTC session (Opus, real time) through edge + origin, ASR_ENGINE=${engine}` +
      (env.SPHINX_LM ? ` SPHINX_LM=${env.SPHINX_LM}` : ""),
    async recognize(_rec: HumanRecording, path: string): Promise<SystemResult> {
      const pcm48k = floatToInt16(resampleAll(int16ToFloat(readWav16k(path)), 16000, 48000));
      const played = new Int16Array(48 * LEAD_MS + pcm48k.length + 48 * TAIL_MS);
      played.set(pcm48k, 48 * LEAD_MS);
      const c = new TestClient({ audio: "silence", pcm48k: played });
      let id = "";
      try {
        const r = await call(url, "POST", "/v1/sessions", key, {
          sdp: await c.offer(),
          options: { mode: "transcribe" },
        });
        if (r.status !== 201) throw new Error(`POST /v1/sessions → ${r.status} ${r.text}`);
        const body = r.body as { id: string; sdp: string };
        id = body.id;
        await c.accept(body.sdp);
        await c.waitForEvent("state", (e) => e.state === "active", 30_000);
        const t0 = performance.now();
        c.audio = "pcm";
        const confirmed = () =>
          c.received.filter((e): e is TranscriptEvent => e.type === "transcript" && e.status === "confirmed");
        const audioMs = played.length / 48;
        await new Promise((r) => setTimeout(r, audioMs));
        // then until no transcript event (partial or confirmed) for `quietMs`: a recognizer behind real time on
        // a loaded machine is still catching up (at load 25 on 2 cores even the CLI runs at 4× real time, and a
        // confirmed result can come long after the last partial); a session ended earlier loses its last segment
        let n = -1;
        while (n !== c.received.length) {
          n = c.received.length;
          await new Promise((r) => setTimeout(r, quietMs));
        }
        const errors = c.received.filter((e) => e.type === "error");
        if (errors.length) console.error(`live ${path}: ${JSON.stringify(errors)}`);
        const text = confirmed().sort((a, b) => a.segment_id - b.segment_id).map((e) =>
          e.alternatives[0].text
        )
          .join(" ");
        return { text, decodeMs: performance.now() - t0 - audioMs, cpuMs: NaN };
      } finally {
        c.close();
        if (id) await call(url, "DELETE", `/v1/sessions/${id}`, key).catch(() => {});
      }
    },
    async close() {
      proc.kill("SIGTERM");
      await proc.status();
    },
  };
}
