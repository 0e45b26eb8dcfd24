/**
 * TTS job audio storage end to end (edge routes + origin worker + real espeak, PGlite by default, PostgreSQL
 * with PARLEY_TEST_DATABASE_URL): the same text stored as PCM and as Ogg Opus; the Opus job's WAV has exactly
 * the PCM job's length, is speech, and matches the PCM waveform; the database holds far fewer bytes; a row
 * written before compression existed (codec default `pcm`, no sample count) is still served byte for byte.
 */
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { api, startStack } from "./harness.ts";
import { ttsRoutes } from "../edge/routes/tts.ts";
import { TtsJobWorker } from "../origin/tts_jobs/worker.ts";
import { type ChunkSynthesizer, PoolSynthesizer } from "../origin/tts_jobs/synth.ts";
import { parseWav } from "../origin/pipeline/wav.ts";
import { ttsConfig } from "../origin/engine_config.ts";
import { parseConfig } from "../lib/config.ts";
import { storedAudioBytes } from "../db/tts_jobs.ts";
import type { StoredCodec } from "../lib/audio/stored_audio.ts";
import type { TtsJob, TtsJobCreated } from "../protocol/tts.ts";
import { registry } from "../lib/metrics.ts";

const TEXT = "Parley keeps job audio small. The second sentence makes a second chunk, " +
  "and this third one is a little longer so that the audio runs for several seconds.";

/** Byte-level equality (assert.deepEqual walks typed arrays element by element, far too slowly here). */
function sameBytes(a: ArrayBufferView, b: ArrayBufferView, what: string): void {
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  assert.equal(x.length, y.length, `${what}: length`);
  const at = x.findIndex((v, i) => v !== y[i]);
  assert.equal(at, -1, `${what}: first difference at byte ${at}`);
}

/** Envelope (20 ms RMS) correlation and best waveform correlation within ±2 samples. */
function similarity(a: Int16Array, b: Int16Array): { envelope: number; waveform: number; lag: number } {
  const n = Math.min(a.length, b.length), frame = 441;
  const ea: number[] = [], eb: number[] = [];
  for (let f = 0; f + frame <= n; f += frame) {
    let sa = 0, sb = 0;
    for (let i = f; i < f + frame; i++) {
      sa += a[i] * a[i];
      sb += b[i] * b[i];
    }
    ea.push(Math.sqrt(sa / frame));
    eb.push(Math.sqrt(sb / frame));
  }
  const mean = (v: number[]) => v.reduce((x, y) => x + y, 0) / v.length;
  const ma = mean(ea), mb = mean(eb);
  let c = 0, va = 0, vb = 0;
  for (let i = 0; i < ea.length; i++) {
    c += (ea[i] - ma) * (eb[i] - mb);
    va += (ea[i] - ma) ** 2;
    vb += (eb[i] - mb) ** 2;
  }
  let waveform = -1, lag = 0;
  for (let l = -2; l <= 2; l++) {
    let xy = 0, xx = 0, yy = 0;
    for (let i = 8; i < n - 8; i++) {
      xy += a[i] * b[i + l];
      xx += a[i] * a[i];
      yy += b[i + l] * b[i + l];
    }
    const r = xy / Math.sqrt(xx * yy);
    if (r > waveform) [waveform, lag] = [r, l];
  }
  return { envelope: c / Math.sqrt(va * vb), waveform, lag };
}

Deno.test({
  name: "tts audio storage: Opus chunks served as WAV of the PCM length; old PCM rows still served",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const pool = await PoolSynthesizer.create({ workers: 1, tts: ttsConfig(parseConfig({})) });
    // The real engine; what it returned per chunk text is kept as the truth the served audio is compared to.
    const synthesized = new Map<string, Uint8Array>();
    const synth: ChunkSynthesizer = {
      async synthesize(text, voice, engine, rate) {
        const out = await pool.synthesize(text, voice, engine, rate);
        synthesized.set(text, out.pcm.slice());
        return out;
      },
      ready: () => true,
      close: () => pool.close(),
    };
    /** The PCM the engine made for a job, chunk after chunk. */
    const truth = async (jobId: string): Promise<Int16Array> => {
      const rows = await stack.database.query<{ text: string }>(
        sql`select text from tts_chunks where job_id = ${jobId} order by idx`,
      );
      const parts = rows.map((r) => synthesized.get(r.text)!);
      const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        all.set(p, at);
        at += p.length;
      }
      return new Int16Array(all.buffer);
    };
    const storage: { codec: StoredCodec } = { codec: "pcm" };
    const stack = await startStack({ routes: [ttsRoutes] });
    const worker = await TtsJobWorker.start(stack.database, {
      nodeId: "test-origin-storage",
      concurrency: 1,
      leaseMs: 10_000,
      pollMs: 200,
      order: "fair",
      maxAttempts: 3,
      synth,
      storage,
    });
    await stack.startOrigin({ components: [worker] });
    const { key } = await stack.key(["tts"]);
    const get = async (path: string) => {
      const res = await fetch(`${stack.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
      assert.equal(res.status, 200, path);
      return { res, bytes: new Uint8Array(await res.arrayBuffer()) };
    };
    // Each job its own text, and its truth taken as soon as it finished: espeak's output for one text varies
    // slightly from call to call.
    const run = async (codec: StoredCodec): Promise<{ job: TtsJob; truth: Int16Array }> => {
      storage.codec = codec;
      synthesized.clear();
      const text = `${codec === "pcm" ? "Stored as samples." : "Stored as Opus."} ${TEXT}`;
      const sub = await api(stack, "POST", "/v1/tts/jobs", { key, json: { text } });
      assert.equal(sub.status, 202, sub.text);
      const id = (sub.body as TtsJobCreated).id;
      const t0 = Date.now();
      while (Date.now() - t0 < 60_000) {
        const job = (await api(stack, "GET", `/v1/tts/jobs/${id}`, { key })).body as TtsJob;
        if (job.status === "succeeded") return { job, truth: await truth(id) };
        assert.ok(job.status === "queued" || job.status === "running", job.status);
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`${codec} job did not finish`);
    };
    try {
      const { job: pcmJob, truth: pcmTruth } = await run("pcm");
      const { job: opusJob, truth: opusTruth } = await run("opus");
      assert.ok(pcmJob.progress.chunks_total >= 2, `chunks ${pcmJob.progress.chunks_total}`);
      const pcmWav = await get(`/v1/tts/jobs/${pcmJob.id}/audio`);
      const opusWav = await get(`/v1/tts/jobs/${opusJob.id}/audio`);

      await t.step("the PCM job's WAV is the synthesized PCM, byte for byte", () => {
        sameBytes(parseWav(pcmWav.bytes).samples, pcmTruth, "pcm job");
      });

      await t.step("the Opus job's WAV: exact length, Content-Length, speech, same waveform", () => {
        assert.equal(Number(opusWav.res.headers.get("content-length")), opusWav.bytes.length);
        const a = { samples: opusTruth }, b = parseWav(opusWav.bytes);
        assert.equal(b.sampleRate, 22050);
        // Exactly as many samples as were synthesized (pre-skip and resampler delay removed, tail restored).
        assert.equal(b.samples.length, a.samples.length);
        assert.ok(Math.abs(b.samples.length / 22050 - opusJob.progress.audio_seconds) < 0.01);
        let energy = 0;
        for (const s of b.samples) energy += s * s;
        const rms = Math.sqrt(energy / b.samples.length);
        assert.ok(rms > 300, `speech, not silence: rms ${rms}`);
        const sim = similarity(a.samples, b.samples);
        assert.ok(sim.envelope > 0.98, `envelope correlation ${sim.envelope}`);
        assert.ok(sim.waveform > 0.9, `waveform correlation ${sim.waveform}`);
        assert.ok(Math.abs(sim.lag) <= 1, `aligned: lag ${sim.lag} samples`);
      });

      await t.step("pcm16 and the running-job stream path decode the same audio", async () => {
        const raw = await get(`/v1/tts/jobs/${opusJob.id}/audio?format=pcm16`);
        sameBytes(raw.bytes, opusWav.bytes.subarray(44), "pcm16 vs wav");
      });

      await t.step(
        "the database holds far fewer bytes per audio second; metrics count both codecs",
        async () => {
          const [p] = await storedAudioBytes(stack.database, pcmJob.id);
          const [o] = await storedAudioBytes(stack.database, opusJob.id);
          assert.equal(p.codec, "pcm");
          assert.equal(o.codec, "opus");
          const pcmPerSecond = p.bytes / p.seconds, opusPerSecond = o.bytes / o.seconds;
          assert.equal(Math.round(pcmPerSecond), 44100);
          assert.ok(opusPerSecond < pcmPerSecond / 8, `opus ${opusPerSecond} B/s vs pcm ${pcmPerSecond}`);
          const text = registry.render();
          assert.match(text, /parley_tts_audio_stored_bytes_total\{codec="opus"\} \d+/);
          assert.match(text, /parley_tts_audio_stored_bytes_total\{codec="pcm"\} \d+/);
        },
      );

      await t.step(
        "a row from before compression (codec default, no sample count) is served as it was",
        async () => {
          await stack.database.query(sql`update tts_chunks set samples = null where job_id = ${pcmJob.id}`);
          const cols = await stack.database.query<{ codec: string; n: number }>(
            sql`select codec, count(*)::int as n from tts_chunks where job_id = ${pcmJob.id} group by codec`,
          );
          assert.deepEqual(cols.map((r) => r.codec), ["pcm"]);
          const again = await get(`/v1/tts/jobs/${pcmJob.id}/audio`);
          assert.equal(Number(again.res.headers.get("content-length")), again.bytes.length);
          sameBytes(again.bytes, pcmWav.bytes, "old pcm rows");
        },
      );
    } finally {
      await stack.close();
      await worker.close();
      await pool.close();
    }
  },
});
