/**
 * TTS job API end to end, in process: edge (ttsRoutes) + one origin whose TTS job worker synthesizes with the
 * real espeak engine in an inference worker pool. PGlite by default; real PostgreSQL with
 * PARLEY_TEST_DATABASE_URL. One stack for the whole file (steps), to keep it lean.
 */
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { api, type Stack, startStack } from "./harness.ts";
import { ttsRoutes } from "../edge/routes/tts.ts";
import { TtsJobWorker } from "../origin/tts_jobs/worker.ts";
import { type ChunkSynthesizer, PoolSynthesizer } from "../origin/tts_jobs/synth.ts";
import { parseWav } from "../origin/pipeline/wav.ts";
import { ttsConfig } from "../origin/engine_config.ts";
import { parseConfig } from "../lib/config.ts";
import type { TtsJob, TtsJobCreated } from "../protocol/tts.ts";

/** The real engine, with a test-controlled hold before synthesizing (to observe a job while it runs). */
class HeldSynth implements ChunkSynthesizer {
  #hold: Promise<void> | null = null;
  #release: () => void = () => {};
  calls: string[] = [];
  constructor(private readonly inner: ChunkSynthesizer) {}
  hold(): void {
    this.#hold ??= new Promise((r) => (this.#release = r));
  }
  release(): void {
    this.#release();
    this.#hold = null;
  }
  async synthesize(
    text: string,
    voice: string,
    engine: string,
    rate: number,
    opts?: { speed?: number; ssml?: boolean },
  ) {
    this.calls.push(text);
    const gate = this.#hold; // a call waits for the hold it found; release() lets it through
    if (gate) await gate;
    return await this.inner.synthesize(text, voice, engine, rate, opts);
  }
  ready() {
    return true;
  }
  close() {
    this.release();
    return Promise.resolve();
  }
}

interface SseEvent {
  event: string;
  data: unknown;
}

async function readSse(url: string, key: string): Promise<SseEvent[]> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${key}` } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /text\/event-stream/);
  const text = await res.text(); // the stream ends after the terminal event
  return text.split("\n\n").filter((b) => b.startsWith("event:")).map((b) => {
    const [ev, data] = b.split("\n");
    return { event: ev.slice(7), data: JSON.parse(data.slice(6)) };
  });
}

async function waitStatus(
  stack: Stack,
  key: string,
  id: string,
  status: string,
  ms = 60_000,
): Promise<TtsJob> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    const r = await api(stack, "GET", `/v1/tts/jobs/${id}`, { key });
    if ((r.body as TtsJob).status === status) return r.body as TtsJob;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`job ${id} never reached ${status}`);
}

const TEXT =
  "Parley speaks. This is the second sentence of the test. And here is a third one, a little longer, " +
  "so that the job has several chunks to stream.";

Deno.test({
  name: "tts api: lifecycle, events, streaming audio, idempotency, cancel, validation, tenant isolation",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const pool = await PoolSynthesizer.create({ workers: 1, tts: ttsConfig(parseConfig({})) });
    const synth = new HeldSynth(pool);
    const stack = await startStack({ routes: [ttsRoutes], config: { TTS_MAX_TEXT_CHARS: "2000" } });
    const worker = await TtsJobWorker.start(stack.database, {
      nodeId: "test-origin",
      concurrency: 1,
      leaseMs: 5000,
      pollMs: 500,
      order: "fair",
      maxAttempts: 3,
      synth,
    });
    await stack.startOrigin({ components: [worker] });
    const { key } = await stack.key(["tts"]);
    try {
      await t.step("lifecycle: 202 → running → succeeded; SSE events in order; complete WAV", async () => {
        const sub = await api(stack, "POST", "/v1/tts/jobs", { key, json: { text: TEXT } });
        assert.equal(sub.status, 202, sub.text);
        const created = sub.body as TtsJobCreated;
        assert.equal(sub.headers.get("location"), `/v1/tts/jobs/${created.id}`);
        assert.equal(created.links.audio, `/v1/tts/jobs/${created.id}/audio`);
        assert.ok(created.chunks_total >= 2, `chunks: ${created.chunks_total}`);
        const events = await readSse(`${stack.url}/v1/tts/jobs/${created.id}/events`, key);
        assert.equal(events[0].event, "status");
        assert.equal(events[events.length - 1].event, "succeeded");
        const chunkIdx = events.filter((e) => e.event === "chunk").map((e) =>
          (e.data as { idx: number }).idx
        );
        assert.deepEqual([...chunkIdx].sort((a, b) => a - b), [...Array(created.chunks_total).keys()]);
        const lastChunkAt = events.findLastIndex((e) => e.event === "chunk");
        assert.ok(lastChunkAt < events.length - 1, "terminal event after every chunk event");
        assert.ok(events.some((e) => e.event === "progress"));
        const job = (await api(stack, "GET", `/v1/tts/jobs/${created.id}`, { key })).body as TtsJob;
        assert.equal(job.status, "succeeded");
        assert.equal(job.progress.chunks_done, job.progress.chunks_total);
        assert.ok(job.progress.audio_seconds > 3, `audio ${job.progress.audio_seconds} s`);
        const { queued_at, started_at, first_audio_at, finished_at } = job.timings;
        assert.ok(
          queued_at <= started_at! && started_at! <= first_audio_at! && first_audio_at! <= finished_at!,
        );
        const audio = await fetch(`${stack.url}${created.links.audio}`, {
          headers: { authorization: `Bearer ${key}` },
        });
        assert.equal(audio.status, 200);
        assert.equal(audio.headers.get("content-type"), "audio/wav");
        const bytes = new Uint8Array(await audio.arrayBuffer());
        assert.equal(Number(audio.headers.get("content-length")), bytes.length);
        const wav = parseWav(bytes);
        assert.equal(wav.sampleRate, 22050);
        assert.ok(Math.abs(wav.samples.length / 22050 - job.progress.audio_seconds) < 0.01);
        let energy = 0;
        for (const s of wav.samples) energy += s * s;
        assert.ok(Math.sqrt(energy / wav.samples.length) > 300, "it is speech, not silence");
        const raw = await fetch(`${stack.url}${created.links.audio}?format=pcm16`, {
          headers: { authorization: `Bearer ${key}` },
        });
        assert.equal((await raw.arrayBuffer()).byteLength, bytes.length - 44);
      });

      await t.step("audio streams while the job runs, then continues to the end", async () => {
        synth.hold();
        const callsBefore = synth.calls.length;
        const sub = (await api(stack, "POST", "/v1/tts/jobs", { key, json: { text: TEXT + " " + TEXT } }))
          .body as TtsJobCreated;
        // let exactly the first chunk through
        while (synth.calls.length === callsBefore) {
          await new Promise((r) => setTimeout(r, 20));
        }
        synth.release();
        synth.hold();
        await waitStatus(stack, key, sub.id, "running");
        while (
          ((await api(stack, "GET", `/v1/tts/jobs/${sub.id}`, { key })).body as TtsJob).progress.chunks_done <
            1
        ) {
          await new Promise((r) => setTimeout(r, 20));
        }
        const res = await fetch(`${stack.url}${sub.links.audio}`, {
          headers: { authorization: `Bearer ${key}` },
        });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("x-parley-job-status"), "running");
        assert.equal(res.headers.get("content-length"), null, "chunked: length unknown while running");
        const reader = res.body!.getReader();
        const got: Uint8Array[] = [];
        let n = 0;
        while (n <= 44) { // header + some audio of the first chunk, while the job is still running
          const { value } = await reader.read();
          got.push(value!);
          n += value!.length;
        }
        const mid = (await api(stack, "GET", `/v1/tts/jobs/${sub.id}`, { key })).body as TtsJob;
        assert.equal(mid.status, "running", "audio arrived before the job finished");
        synth.release();
        while (true) {
          const { value, done } = await reader.read();
          if (done) break;
          got.push(value);
          n += value.length;
        }
        const streamed = new Uint8Array(n);
        let o = 0;
        for (const g of got) streamed.set(g, (o += g.length) - g.length);
        const dv = new DataView(streamed.buffer);
        assert.equal(dv.getUint32(40, true), 0xffffffff - 36, "open-ended data size while streaming");
        const done = await waitStatus(stack, key, sub.id, "succeeded");
        const full = new Uint8Array(
          await (await fetch(`${stack.url}${sub.links.audio}`, {
            headers: { authorization: `Bearer ${key}` },
          }))
            .arrayBuffer(),
        );
        assert.deepEqual(streamed.subarray(44), full.subarray(44), "streamed audio = final audio");
        assert.ok(Math.abs(parseWav(streamed).samples.length / 22050 - done.progress.audio_seconds) < 0.01);
      });

      await t.step("Idempotency-Key: a retried submit returns the same job; other text → 409", async () => {
        const h = { "idempotency-key": "retry-1" };
        const a = await api(stack, "POST", "/v1/tts/jobs", {
          key,
          json: { text: "Hello once." },
          headers: h,
        });
        const b = await api(stack, "POST", "/v1/tts/jobs", {
          key,
          json: { text: "Hello once." },
          headers: h,
        });
        assert.equal(a.status, 202);
        assert.equal(b.status, 202);
        assert.equal((a.body as TtsJobCreated).id, (b.body as TtsJobCreated).id);
        assert.equal((a.body as TtsJobCreated).created, true);
        assert.equal((b.body as TtsJobCreated).created, false);
        const c = await api(stack, "POST", "/v1/tts/jobs", { key, json: { text: "Other." }, headers: h });
        assert.equal(c.status, 409);
        const n = await stack.database.query<{ n: number }>(
          sql`select count(*)::int as n from tts_jobs where idempotency_key = 'retry-1'`,
        );
        assert.equal(Number(n[0].n), 1);
        const hb = { "idempotency-key": "batch-1" };
        const texts = ["One.", "Two.", "Three."];
        const x = await api(stack, "POST", "/v1/tts/batches", { key, json: { texts }, headers: hb });
        const y = await api(stack, "POST", "/v1/tts/batches", { key, json: { texts }, headers: hb });
        assert.equal(x.status, 202, x.text);
        const xb = x.body as { batch_id: string; jobs: TtsJobCreated[] };
        const yb = y.body as { batch_id: string; jobs: TtsJobCreated[] };
        assert.equal(xb.jobs.length, 3);
        assert.equal(xb.batch_id, yb.batch_id);
        assert.deepEqual(xb.jobs.map((j) => j.id), yb.jobs.map((j) => j.id));
        const j0 = (await api(stack, "GET", `/v1/tts/jobs/${xb.jobs[0].id}`, { key })).body as TtsJob;
        assert.equal(j0.priority, "batch");
        assert.equal(j0.batch_id, xb.batch_id);
        for (const j of xb.jobs) await waitStatus(stack, key, j.id, "succeeded");
      });

      await t.step(
        "cancel: a running job stops, its in-flight result is dropped, SSE says canceled",
        async () => {
          synth.hold();
          const sub = (await api(stack, "POST", "/v1/tts/jobs", { key, json: { text: TEXT } }))
            .body as TtsJobCreated;
          await waitStatus(stack, key, sub.id, "running"); // a chunk is claimed and held in synthesis
          const del = await api(stack, "DELETE", `/v1/tts/jobs/${sub.id}`, { key });
          assert.equal(del.status, 200);
          assert.equal((del.body as TtsJob).status, "canceled");
          assert.ok((del.body as TtsJob).timings.finished_at);
          synth.release();
          const before = worker.completed;
          await new Promise((r) => setTimeout(r, 500));
          const after = (await api(stack, "GET", `/v1/tts/jobs/${sub.id}`, { key })).body as TtsJob;
          assert.equal(after.status, "canceled");
          assert.equal(after.progress.chunks_done, 0, "the in-flight chunk's result was refused");
          assert.equal(worker.completed, before);
          const events = await readSse(`${stack.url}/v1/tts/jobs/${sub.id}/events`, key);
          assert.deepEqual(events.map((e) => e.event), ["status", "progress", "canceled"]);
          assert.equal((await api(stack, "GET", `/v1/tts/jobs/${sub.id}/audio`, { key })).status, 409);
          const again = await api(stack, "DELETE", `/v1/tts/jobs/${sub.id}`, { key });
          assert.equal((again.body as TtsJob).status, "canceled", "cancel is idempotent");
          const done = await api(stack, "POST", "/v1/tts/jobs", { key, json: { text: "After cancel." } });
          await waitStatus(stack, key, (done.body as TtsJobCreated).id, "succeeded");
        },
      );

      await t.step(
        "validation: empty 400, too long 413, unknown voice/engine 400, bad JSON/cursor 400",
        async () => {
          const post = (json: unknown) => api(stack, "POST", "/v1/tts/jobs", { key, json });
          const code = (r: { body: unknown }) => (r.body as { error: { code: string } }).error.code;
          let r = await post({ text: "" });
          assert.equal(r.status, 400);
          assert.equal(code(r), "validation_failed");
          assert.equal((await post({ text: " \n\t\u0000\u0007 " })).status, 400, "only whitespace/control");
          r = await post({ text: "word ".repeat(401) });
          assert.equal(r.status, 413);
          assert.equal(code(r), "payload_too_large");
          assert.equal((await post({ text: "😀".repeat(2001) })).status, 413, "limit counts characters");
          assert.equal(
            (await post({ text: "😀".repeat(1000) })).status,
            202,
            "emoji: 2000 UTF-16 units is fine",
          );
          r = await post({ text: "Hi.", voice: "xx-klingon" });
          assert.equal(r.status, 400);
          assert.match((r.body as { error: { message: string } }).error.message, /unknown voice/);
          assert.equal((await post({ text: "Hi.", engine: "sam" })).status, 400);
          assert.equal((await post({ text: "Hi.", format: "mp3" })).status, 400);
          assert.equal((await post({ text: "Hi.", extra: 1 })).status, 400);
          assert.equal((await post({ text: 42 })).status, 400);
          const bad = await api(stack, "POST", "/v1/tts/jobs", {
            key,
            body: "{nope",
            headers: { "content-type": "application/json" },
          });
          assert.equal(bad.status, 400);
          assert.equal(
            (await api(stack, "POST", "/v1/tts/batches", { key, json: { texts: [] } })).status,
            400,
          );
          r = await api(stack, "POST", "/v1/tts/batches", { key, json: { texts: ["ok", ""] } });
          assert.equal(r.status, 400);
          assert.match((r.body as { error: { message: string } }).error.message, /texts\[1\]/);
          assert.equal((await api(stack, "GET", "/v1/tts/jobs?cursor=zzz", { key })).status, 400);
          assert.equal((await api(stack, "GET", "/v1/tts/jobs?status=done", { key })).status, 400);
          assert.equal((await api(stack, "GET", "/v1/tts/jobs/not-a-uuid", { key })).status, 404);
          const sessionsOnly = await stack.key(["sessions"]);
          assert.equal(
            (await api(stack, "POST", "/v1/tts/jobs", { key: sessionsOnly.key, json: { text: "x" } })).status,
            403,
          );
          assert.equal((await api(stack, "GET", "/v1/tts/jobs", {})).status, 401);
        },
      );

      await t.step("any Unicode is spoken without crashing the engine", async () => {
        const text =
          "Emoji 👨‍👩‍👧‍👦 and 😀! שלום עולם. مرحبا بالعالم. 日本語のテキスト。Ελληνικά, русский.\u0000\u001b[31m";
        const sub = (await api(stack, "POST", "/v1/tts/jobs", { key, json: { text } })).body as TtsJobCreated;
        const done = await waitStatus(stack, key, sub.id, "succeeded");
        assert.ok(done.progress.audio_seconds > 1);
      });

      await t.step("tenant isolation: another tenant's job is 404 everywhere and never listed", async () => {
        const other = await stack.key(["tts"]);
        const mine = (await api(stack, "POST", "/v1/tts/jobs", { key, json: { text: "Mine." } }))
          .body as TtsJobCreated;
        for (
          const path of [
            `/v1/tts/jobs/${mine.id}`,
            `/v1/tts/jobs/${mine.id}/audio`,
            `/v1/tts/jobs/${mine.id}/events`,
          ]
        ) {
          const r = await api(stack, "GET", path, { key: other.key });
          assert.equal(r.status, 404, path);
        }
        assert.equal((await api(stack, "DELETE", `/v1/tts/jobs/${mine.id}`, { key: other.key })).status, 404);
        const list = (await api(stack, "GET", "/v1/tts/jobs", { key: other.key })).body as { jobs: TtsJob[] };
        assert.equal(list.jobs.length, 0);
        // the same Idempotency-Key in another tenant is a different job
        const h = { "idempotency-key": "retry-1" };
        const r = await api(stack, "POST", "/v1/tts/jobs", {
          key: other.key,
          json: { text: "Hello once." },
          headers: h,
        });
        assert.equal((r.body as TtsJobCreated).created, true);
        await waitStatus(stack, key, mine.id, "succeeded");
      });

      await t.step("list: keyset pages, newest first, status filter", async () => {
        const all: string[] = [];
        let cursor = "";
        for (let i = 0; i < 20; i++) {
          const r = await api(stack, "GET", `/v1/tts/jobs?limit=3${cursor ? `&cursor=${cursor}` : ""}`, {
            key,
          });
          assert.equal(r.status, 200);
          const page = r.body as { jobs: TtsJob[]; next_cursor: string | null };
          all.push(...page.jobs.map((j) => j.id));
          if (!page.next_cursor) break;
          cursor = page.next_cursor;
        }
        const n = await stack.database.query<{ n: number }>(
          sql`select count(*)::int as n from tts_jobs where tenant_id = (select tenant_id from tts_jobs where id = ${
            all[0]
          })`,
        );
        assert.equal(all.length, Number(n[0].n));
        assert.equal(new Set(all).size, all.length);
        const canceled = (await api(stack, "GET", "/v1/tts/jobs?status=canceled", { key })).body as {
          jobs: TtsJob[];
        };
        assert.equal(canceled.jobs.length, 1);
        assert.ok(canceled.jobs.every((j) => j.status === "canceled"));
      });
    } finally {
      synth.release();
      await stack.close();
      await pool.close();
    }
  },
});
