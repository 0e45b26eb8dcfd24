/**
 * TTS job API (scope `tts`). Submissions are split into chunks and stored in Postgres; origins claim and
 * synthesize them (origin/tts_jobs). The edge reads results straight from the database and follows running jobs
 * through NOTIFY on `parley_tts_job` (one LISTEN per edge process) with a 1 s fallback poll.
 *
 *   POST   /v1/tts/jobs              {text, voice?, engine?, format?, priority?} → 202 {id, status, links, …}
 *   POST   /v1/tts/batches           {texts[], voice?, engine?, format?, priority?} → 202 {batch_id, jobs[]}
 *   GET    /v1/tts/jobs              ?status=&limit=&cursor= (keyset, newest first)
 *   GET    /v1/tts/jobs/:id          status, progress, timings, error
 *   GET    /v1/tts/jobs/:id/audio    WAV (or ?format=pcm16); while running, streams chunks as they finish
 *   GET    /v1/tts/jobs/:id/events   Server-Sent Events: status, chunk, progress, then succeeded|failed|canceled
 *   DELETE /v1/tts/jobs/:id          cancel
 *
 * `Idempotency-Key` on POST: a retry with the same key (same tenant) returns the same job(s), never duplicates.
 */
import { wavHeader } from "../../protocol/wav.ts";
import { z } from "zod";
import {
  doneAudioBytes,
  doneChunks,
  endJob,
  getJob,
  IdempotencyConflictError,
  type JobRow,
  listJobs,
  type NewJob,
  submitJobs,
} from "../../db/tts_jobs.ts";
import { ApiError } from "../../lib/errors.ts";
import { readJson, validationError } from "../../lib/http.ts";
import { registry } from "../../lib/metrics.ts";
import {
  TTS_FORMATS,
  TTS_JOB_ENGINES,
  TTS_JOB_STATUSES,
  TTS_MAX_BATCH,
  TTS_PRIORITIES,
  TTS_SAMPLE_RATE,
  type TtsBatchCreated,
  type TtsJob,
  type TtsJobCreated,
  type TtsJobEngine,
  ttsJobLinks,
  type TtsJobList,
  type TtsJobStatus,
  type TtsPriority,
} from "../../protocol/tts.ts";
import { chunkText, cleanText, countChars } from "../../protocol/tts_text.ts";
import { SsmlError, ssmlJobChunks } from "../../protocol/ssml.ts";
import { MAX_SPEED, MIN_SPEED, resolveVoice, unknownVoiceMessage } from "../../protocol/voices.ts";
import type { Principal } from "../auth.ts";
import type { EdgeApp, EdgeContext } from "../context.ts";
import { guard } from "../context.ts";
import { jobWatchOf } from "../listen_hub.ts";
import { SSE_HEADERS, sseComment, sseFrame, streamOf } from "../sse.ts";
import { jobPcm } from "../tts_audio.ts";
import { isEpochMicros, PgText, PgUuid } from "../../protocol/pg_domains.ts";

const mSubmitted = registry.counter("parley_tts_jobs_submitted_total", "TTS jobs submitted, by priority");
const mStreams = registry.gauge("parley_tts_streams_open", "Open TTS audio and event streams on this edge");

const JobOptions = {
  /** A voice name of protocol/voices.ts; a bare id is looked up in `engine` (if given) first. */
  voice: PgText.min(1).max(64).optional(),
  speed: z.number().min(MIN_SPEED).max(MAX_SPEED).optional(),
  /** `text` (each of `texts`) is SSML (protocol/ssml.ts subset). */
  ssml: z.boolean().optional(),
  engine: z.enum(TTS_JOB_ENGINES).optional(),
  format: z.enum(TTS_FORMATS).optional(),
  priority: z.enum(TTS_PRIORITIES).optional(),
};
const JobOptionsSchema = z.object(JobOptions);
export const CreateTtsJob = z.object({ text: z.string(), ...JobOptions }).strict();
export const CreateTtsBatch = z.object({
  texts: z.array(z.string()).min(1).max(TTS_MAX_BATCH),
  ...JobOptions,
}).strict();
export const ListTtsJobsQuery = z.object({
  status: z.enum(TTS_JOB_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().refine((s) => {
    const [micros, id, ...rest] = s.split("_");
    return rest.length === 0 && isEpochMicros(micros) && PgUuid.safeParse(id).success;
  }, "not a cursor from next_cursor").optional(),
}).strict();
const JOB_ID = z.uuid();
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;

export function jobJson(r: JobRow): TtsJob {
  return {
    id: r.id,
    batch_id: r.batch_id,
    status: r.status,
    voice: r.voice,
    engine: r.engine,
    speed: r.speed,
    ssml: r.ssml,
    format: r.format,
    priority: r.priority,
    sample_rate: r.sample_rate,
    progress: {
      chunks_done: r.chunks_done,
      chunks_total: r.chunks_total,
      chars_done: r.chars_done,
      chars_total: r.chars_total,
      audio_seconds: r.audio_ms / 1000,
    },
    timings: {
      queued_at: r.queued_at,
      started_at: r.started_at,
      first_audio_at: r.first_audio_at,
      finished_at: r.finished_at,
    },
    error: r.error,
    links: ttsJobLinks(r.id),
  };
}

function created(r: JobRow, isNew: boolean): TtsJobCreated {
  return {
    id: r.id,
    status: r.status,
    chunks_total: r.chunks_total,
    links: ttsJobLinks(r.id),
    created: isNew,
  };
}

const TERMINAL = new Set<TtsJobStatus>(["succeeded", "failed", "canceled"]);

export function ttsRoutes(app: EdgeApp, ctx: EdgeContext): void {
  const auth = guard(ctx, "tts");
  const maxChars = ctx.config.TTS_MAX_TEXT_CHARS;
  // JSON may escape every character as \uXXXX\uXXXX: leave room so that over-long text is measured (413 with
  // a precise message) rather than cut off by the body limit (also 413).
  const bodyLimit = Math.max(ctx.config.MAX_BODY_BYTES, maxChars * 12 + 64 * 1024);
  const database = ctx.database;

  function prepare(
    p: Principal,
    text: string,
    o: z.infer<typeof JobOptionsSchema>,
    where: string,
    defaults: { priority: TtsPriority },
  ): NewJob {
    const n = countChars(text);
    if (n > maxChars) {
      throw new ApiError(
        413,
        "payload_too_large",
        `${where}text has ${n} characters; the limit is ${maxChars}`,
      );
    }
    let chunks: string[];
    if (o.ssml) {
      try {
        chunks = ssmlJobChunks(text); // validated and normalised here: user markup is never stored as a chunk
      } catch (e) {
        if (e instanceof SsmlError) throw new ApiError(400, "invalid_ssml", `${where}${e.message}`);
        throw e;
      }
      chunks = chunks.filter((c) => /[\p{L}\p{N}]/u.test(c.replace(/<[^>]*>/g, "")));
    } else {
      chunks = chunkText(text);
    }
    if (!chunks.length) {
      throw new ApiError(400, "validation_failed", `${where}text is empty (nothing to speak)`);
    }
    // a bare voice id is looked up in the requested engine first, then in the others
    const defaultEngine: TtsJobEngine = o.engine ?? ctx.config.TTS_ENGINE;
    const resolved = resolveVoice(o.voice, {
      engine: defaultEngine,
      voice: o.engine && o.engine !== ctx.config.TTS_ENGINE ? undefined : ctx.config.TTS_VOICE,
    });
    if (!resolved) throw new ApiError(400, "unknown_voice", `${where}${unknownVoiceMessage(o.voice ?? "")}`);
    if (o.engine && resolved.engine !== o.engine) {
      throw new ApiError(
        400,
        "unknown_voice",
        `${where}voice "${o.voice}" is a ${resolved.engine} voice, not ${o.engine} (list voices at GET /v1/voices)`,
      );
    }
    const { engine, voice } = resolved;
    return {
      tenantId: p.tenantId,
      apiKeyId: p.keyId,
      text: o.ssml ? text : cleanText(text), // stored cleaned: Postgres text cannot hold NUL (SSML refuses it)
      speed: o.speed ?? 1,
      ssml: o.ssml ?? false,
      voice,
      engine,
      format: o.format ?? "wav",
      priority: o.priority ?? defaults.priority,
      sampleRate: TTS_SAMPLE_RATE,
      chunks,
    };
  }

  function idempotencyKey(c: { req: { header(name: string): string | undefined } }): string | undefined {
    const key = c.req.header("idempotency-key");
    if (key === undefined) return undefined;
    if (!IDEMPOTENCY_KEY.test(key)) {
      throw new ApiError(400, "validation_failed", "Idempotency-Key: 1–200 printable ASCII characters");
    }
    return key;
  }

  async function submit(jobs: NewJob[]) {
    try {
      return await submitJobs(database, jobs);
    } catch (e) {
      if (e instanceof IdempotencyConflictError) throw new ApiError(409, "conflict", e.message);
      throw e;
    }
  }

  async function loadJob(p: Principal, id: string): Promise<JobRow> {
    if (!JOB_ID.safeParse(id).success) throw new ApiError(404, "not_found", "no such job");
    const row = await getJob(database, p.tenantId, id);
    if (!row) throw new ApiError(404, "not_found", "no such job"); // another tenant's job looks missing
    return row;
  }

  app.post("/v1/tts/jobs", auth, async (c) => {
    const p = c.get("principal");
    const key = idempotencyKey(c);
    const parsed = CreateTtsJob.safeParse(await readJson(c, bodyLimit));
    if (!parsed.success) throw validationError(parsed.error.issues);
    const job = prepare(p, parsed.data.text, parsed.data, "", { priority: "interactive" });
    job.idempotencyKey = key ?? null;
    const [r] = await submit([job]);
    if (r.created) mSubmitted.inc({ priority: job.priority });
    c.header("location", ttsJobLinks(r.job.id).self);
    return c.json(created(r.job, r.created), 202);
  });

  app.post("/v1/tts/batches", auth, async (c) => {
    const p = c.get("principal");
    const key = idempotencyKey(c);
    const parsed = CreateTtsBatch.safeParse(await readJson(c, bodyLimit));
    if (!parsed.success) throw validationError(parsed.error.issues);
    const total = parsed.data.texts.reduce((s, t) => s + countChars(t), 0);
    if (total > maxChars * 4) {
      throw new ApiError(
        413,
        "payload_too_large",
        `batch has ${total} characters; the limit is ${maxChars * 4}`,
      );
    }
    const batchId = crypto.randomUUID();
    const jobs = parsed.data.texts.map((t, i) => {
      const j = prepare(p, t, parsed.data, `texts[${i}]: `, { priority: "batch" });
      j.batchId = batchId;
      j.idempotencyKey = key ? `${key}#${i}` : null;
      return j;
    });
    const rows = await submit(jobs);
    for (const r of rows) if (r.created) mSubmitted.inc({ priority: r.job.priority });
    const body: TtsBatchCreated = {
      batch_id: rows[0].job.batch_id ?? batchId,
      jobs: rows.map((r) => created(r.job, r.created)),
    };
    return c.json(body, 202);
  });

  app.get("/v1/tts/jobs", auth, async (c) => {
    const p = c.get("principal");
    const q = ListTtsJobsQuery.safeParse(c.req.query());
    if (!q.success) throw validationError(q.error.issues);
    const cursor = q.data.cursor
      ? { micros: q.data.cursor.split("_")[0], id: q.data.cursor.split("_")[1] }
      : undefined;
    const r = await listJobs(database, p.tenantId, { status: q.data.status, limit: q.data.limit, cursor });
    return c.json({ jobs: r.jobs.map(jobJson), next_cursor: r.nextCursor } satisfies TtsJobList);
  });

  app.get("/v1/tts/jobs/:id", auth, async (c) => {
    return c.json(jobJson(await loadJob(c.get("principal"), c.req.param("id"))));
  });

  app.delete("/v1/tts/jobs/:id", auth, async (c) => {
    const p = c.get("principal");
    await loadJob(p, c.req.param("id"));
    const row = await endJob(database, c.req.param("id"), "canceled", null, p.tenantId);
    if (!row) throw new ApiError(404, "not_found", "no such job");
    return c.json(jobJson(row));
  });

  app.get("/v1/tts/jobs/:id/audio", auth, async (c) => {
    const p = c.get("principal");
    const job = await loadJob(p, c.req.param("id"));
    const fmt = c.req.query("format") ?? job.format;
    if (fmt !== "wav" && fmt !== "pcm16") {
      throw new ApiError(400, "validation_failed", "format: wav or pcm16");
    }
    if (job.status === "failed" || job.status === "canceled") {
      throw new ApiError(409, "conflict", `job ${job.status}: no audio`);
    }
    const headers: Record<string, string> = {
      "content-type": fmt === "wav"
        ? "audio/wav"
        : `audio/pcm;rate=${job.sample_rate};channels=1;encoding=s16le`,
      "cache-control": "no-store",
      "x-parley-job-status": job.status,
    };
    const abort = new AbortController();
    const complete = job.status === "succeeded";
    let total: number | null = null;
    if (complete) {
      total = await doneAudioBytes(database, job.id);
      headers["content-length"] = String(total + (fmt === "wav" ? 44 : 0));
    }
    async function* produce(): AsyncGenerator<Uint8Array> {
      if (fmt === "wav") yield wavHeader(job.sample_rate, total);
      yield* jobPcm(database, job, p.tenantId, abort.signal);
    }
    return c.body(streamOf(produce(), abort, mStreams), 200, headers);
  });

  app.get("/v1/tts/jobs/:id/events", auth, async (c) => {
    const p = c.get("principal");
    const first = await loadJob(p, c.req.param("id"));
    const abort = new AbortController();
    const watch = jobWatchOf(database);
    const sse = sseFrame;
    async function* produce(): AsyncGenerator<Uint8Array> {
      yield sse("status", jobJson(first));
      const sent = new Set<number>();
      let low = 0; // every idx < low has been sent
      let lastDone = -1;
      let lastPing = performance.now();
      while (!abort.signal.aborted) {
        const job = await getJob(database, p.tenantId, first.id);
        if (!job) return;
        // chunk events first, so a terminal event always follows every chunk event
        while (true) {
          const rows = await doneChunks(database, job.id, low, { withAudio: false, limit: 200 });
          for (const r of rows) {
            if (sent.has(r.idx)) continue;
            sent.add(r.idx);
            yield sse("chunk", { idx: r.idx, audio_ms: r.audio_ms });
          }
          while (sent.has(low)) sent.delete(low++);
          if (rows.length < 200) break;
        }
        if (job.chunks_done !== lastDone) {
          lastDone = job.chunks_done;
          yield sse("progress", { status: job.status, ...jobJson(job).progress });
        }
        if (TERMINAL.has(job.status)) {
          yield sse(job.status, jobJson(job));
          return;
        }
        if (performance.now() - lastPing > 15_000) {
          lastPing = performance.now();
          yield sseComment("ping");
        }
        await watch.wait(job.id, 1000, abort.signal);
      }
    }
    return c.body(streamOf(produce(), abort, mStreams), 200, SSE_HEADERS);
  });
}
