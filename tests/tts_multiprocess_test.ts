/**
 * Crash safety across processes (real PostgreSQL only: runs when PARLEY_TEST_DATABASE_URL is set). Three origin
 * processes and one edge process (`main.ts origin` / `main.ts edge`) share one fresh database; jobs are
 * submitted through the edge; one origin is killed with SIGKILL while it holds chunks. Every job must still
 * succeed, every chunk must have exactly one result, the chunks the dead origin held must have been redone by
 * another origin, and each job's WAV must be complete and continuous (the streamed one, which was open across
 * the crash, and the final one).
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { testDatabaseUrl } from "../db/testing.ts";
import { openDatabase } from "../db/client.ts";
import { SPLIT_SUBMIT_MIN_CHUNKS } from "../db/tts_jobs.ts";
import { createApiKey, createTenant } from "../db/api_keys.ts";
import { StoredAudioDecoder } from "../lib/audio/stored_audio.ts";
import { parseWav } from "../origin/pipeline/wav.ts";
import type { TtsJob, TtsJobCreated } from "../protocol/tts.ts";
import { sql } from "drizzle-orm";

const ROOT = new URL("..", import.meta.url).pathname;
const BASE = testDatabaseUrl();

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
}

function withDb(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

async function waitOk(url: string, ms: number, exited: () => boolean): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (exited()) throw new Error(`process for ${url} exited during start-up`);
    try {
      const r = await fetch(url);
      await r.body?.cancel();
      if (r.ok) return;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} not ready after ${ms} ms`);
}

const sentence = (j: number, i: number) =>
  `Job ${j} sentence ${i} keeps the origins busy for a little while, long enough that a crash in the middle ` +
  `of synthesis is likely to hit a chunk that is still being worked on by the origin that claimed it.`;

Deno.test({
  name:
    "tts multiprocess: kill -9 an origin holding chunks; every job completes exactly once, audio continuous",
  ignore: !BASE,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dbName = `parley_mp_${Deno.pid}_${crypto.randomUUID().slice(0, 6)}`;
    const admin = postgres(BASE!, { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database ${dbName}`);
    const url = withDb(BASE!, dbName);
    const database = await openDatabase({ url, poolSize: 3 }); // migrates
    const procs: Array<
      { id: string; child: Deno.ChildProcess; port: number; err: () => string; exited: boolean }
    > = [];
    const spawn = (role: "edge" | "origin", id: string, env: Record<string, string>) => {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--unstable-worker-options", "main.ts", role],
        cwd: ROOT,
        env: {
          DATABASE_URL: url,
          LOG_LEVEL: "error",
          HEARTBEAT_MS: "500",
          NODE_TIMEOUT_MS: "3000",
          TTS_LEASE_MS: "2000",
          TTS_POLL_MS: "500",
          TTS_WORKERS: "1",
          ASR_WORKERS: "1",
          // one process per origin: the SIGKILL below must hit the process that holds the chunks
          ORIGIN_RECYCLE_SESSIONS: "0",
          // the tiny test recognizer: always present, loads fast (this test is about TTS jobs)
          ASR_ENGINE: "whisper",
          ASR_MODEL: "tiny-whisper",
          RATE_LIMIT_RPS: "1000",
          RATE_LIMIT_BURST: "1000",
          ...env,
        },
        stdout: "null",
        stderr: "piped",
      }).spawn();
      let err = "";
      (async () => {
        for await (const t of child.stderr.pipeThrough(new TextDecoderStream())) err = (err + t).slice(-4000);
      })();
      const proc = { id, child, port: Number(env.ORIGIN_PORT ?? env.PORT), err: () => err, exited: false };
      child.status.then(() => (proc.exited = true));
      procs.push(proc);
      return child;
    };
    try {
      const tenant = await createTenant(database, "mp");
      const { key } = await createApiKey(database, { tenantId: tenant.id, name: "mp", scopes: ["tts"] });
      const edgePort = freePort();
      spawn("edge", "edge", { PORT: String(edgePort) });
      for (let i = 1; i <= 3; i++) {
        spawn("origin", `mp-origin-${i}`, { ORIGIN_PORT: String(freePort()), NODE_ID: `mp-origin-${i}` });
      }
      const edge = `http://127.0.0.1:${edgePort}`;
      const tStart = Date.now();
      await Promise.all(
        procs.map((p) =>
          waitOk(
            `http://127.0.0.1:${p.port}/${p.id === "edge" ? "healthz" : "readyz"}`,
            60_000,
            () => p.exited,
          )
        ),
      );

      const startedMs = Date.now() - tStart;
      const call = async (method: string, path: string, json?: unknown) => {
        const r = await fetch(edge + path, {
          method,
          headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
          body: json === undefined ? undefined : JSON.stringify(json),
        });
        return { status: r.status, body: await r.json() };
      };
      const ids: string[] = [];
      for (let j = 0; j < 6; j++) {
        // the last job is long enough (≥ SPLIT_SUBMIT_MIN_CHUNKS) to take the two-statement submit path
        const text = Array.from({ length: j === 5 ? 18 : 5 }, (_, i) => sentence(j, i)).join(" ");
        const r = await call("POST", "/v1/tts/jobs", { text });
        assert.equal(r.status, 202);
        ids.push((r.body as TtsJobCreated).id);
      }
      // follow job 0's audio across the crash
      const streamed = fetch(`${edge}/v1/tts/jobs/${ids[0]}/audio`, {
        headers: { authorization: `Bearer ${key}` },
      })
        .then(async (r) => new Uint8Array(await r.arrayBuffer()));

      // kill an origin at a moment it holds a chunk
      let victim = "";
      let held: Array<{ job_id: string; idx: number; attempts: number }> = [];
      const t0 = Date.now();
      while (!held.length && Date.now() - t0 < 30_000) {
        const rows = await database.query<{ claimed_by: string }>(sql`select claimed_by from tts_chunks
          where status = 'running' and claimed_by like 'mp-origin-%' and claimed_by <> ${victim} limit 1`);
        if (!rows.length) {
          await new Promise((r) => setTimeout(r, 20));
          continue;
        }
        const target = procs.find((p) => p.id === rows[0].claimed_by)!;
        target.child.kill("SIGKILL");
        await target.child.status;
        victim = target.id;
        held = await database.query(sql`select job_id, idx, attempts from tts_chunks
          where status = 'running' and claimed_by = ${victim}`);
      }
      assert.ok(held.length >= 1, "the killed origin held at least one chunk");
      const tKill = Date.now();

      // every job still succeeds
      const deadline = Date.now() + 60_000;
      const jobs: TtsJob[] = [];
      for (const id of ids) {
        while (true) {
          const j = (await call("GET", `/v1/tts/jobs/${id}`)).body as TtsJob;
          if (j.status === "succeeded") {
            jobs.push(j);
            break;
          }
          assert.ok(j.status === "queued" || j.status === "running", `job ${id} ${j.status}: ${j.error}`);
          assert.ok(Date.now() < deadline, `job ${id} did not finish: ${JSON.stringify(j.progress)}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      console.log(
        `processes ready in ${startedMs} ms; killed ${victim} holding ${held.length} chunk(s); ` +
          `all ${ids.length} jobs succeeded ${Date.now() - tKill} ms after the kill`,
      );
      // exactly one result per chunk; held chunks redone elsewhere
      const chunks = await database.query<
        { job_id: string; idx: number; status: string; bytes: number; attempts: number; claimed_by: string }
      >(sql`select job_id, idx, status, coalesce(octet_length(pcm), 0)::int as bytes, attempts, claimed_by
        from tts_chunks order by job_id, idx`);
      assert.equal(chunks.length, jobs.reduce((s, j) => s + j.progress.chunks_total, 0));
      assert.ok(jobs[5].progress.chunks_total >= SPLIT_SUBMIT_MIN_CHUNKS, "one job took the split submit");
      for (const c of chunks) {
        assert.equal(c.status, "done");
        assert.ok(c.bytes > 0);
      }
      for (const h of held) {
        const c = chunks.find((x) => x.job_id === h.job_id && Number(x.idx) === Number(h.idx))!;
        assert.ok(Number(c.attempts) > Number(h.attempts), "redone after the lease expired");
        assert.notEqual(c.claimed_by, victim);
      }
      const done = new Set(chunks.map((c) => c.claimed_by));
      assert.ok(done.size >= 2, `work spread over origins: ${[...done]}`);
      // complete, continuous WAVs: data = the chunks' stored audio (decoded) in order, nothing missing or repeated
      const decoder = new StoredAudioDecoder();
      try {
        for (const j of jobs) {
          const res = await fetch(`${edge}/v1/tts/jobs/${j.id}/audio`, {
            headers: { authorization: `Bearer ${key}` },
          });
          const wav = new Uint8Array(await res.arrayBuffer());
          const rows = await database.query<{ pcm: Uint8Array; codec: string; samples: number | null }>(
            sql`select pcm, codec, samples from tts_chunks where job_id = ${j.id} order by idx`,
          );
          const parts: Uint8Array[] = [];
          for (const r of rows) {
            parts.push(
              await decoder.decode(
                { codec: r.codec, bytes: new Uint8Array(r.pcm), samples: r.samples },
                22050,
              ),
            );
          }
          const expected = parts.reduce((s, p) => s + p.byteLength, 0);
          assert.equal(wav.length, 44 + expected);
          let off = 44;
          for (const p of parts) {
            const got = wav.subarray(off, off + p.byteLength);
            assert.ok(got.every((v, i) => v === p[i]), `job ${j.id}: chunk audio at byte ${off}`);
            off += p.byteLength;
          }
          assert.ok(Math.abs(parseWav(wav).samples.length / 22050 - j.progress.audio_seconds) < 0.01);
          if (j.id === ids[0]) {
            const s = await streamed;
            assert.deepEqual(
              s.subarray(44),
              wav.subarray(44),
              "the stream open across the crash is complete",
            );
          }
        }
      } finally {
        decoder.close();
      }
    } catch (e) {
      console.error("failed:", e); // before the dangling audio stream's rejection can hide it
      for (const p of procs) console.error(`--- ${p.id} stderr ---\n${p.err()}`);
      throw e;
    } finally {
      for (const p of procs) {
        try {
          p.child.kill("SIGTERM");
        } catch { /* already dead */ }
      }
      await Promise.all(procs.map((p) => p.child.status));
      await database.close();
      await admin.unsafe(`drop database if exists ${dbName} with (force)`);
      await admin.end();
    }
  },
});
