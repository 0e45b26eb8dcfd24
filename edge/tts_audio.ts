/**
 * A TTS job's audio as it is synthesized: PCM16 LE at the job's sample rate, chunk by chunk in order, waiting
 * (NOTIFY, 1 s fallback poll) for chunks not done yet. Chunks stored compressed (Ogg Opus) are decoded here,
 * each to exactly its stored sample count (lib/audio/stored_audio.ts), so lengths match a PCM job's. Ends when
 * every chunk is out, or early when the job failed or was canceled (the caller reads the status) or `signal`
 * aborts. Returns whether every chunk was sent. Used by GET /v1/tts/jobs/{id}/audio and POST /v1/audio/speech.
 */
import type { Database } from "../db/client.ts";
import { doneChunks, getJob, type JobRow } from "../db/tts_jobs.ts";
import { jobWatchOf } from "./listen_hub.ts";
import { StoredAudioDecoder } from "../lib/audio/stored_audio.ts";
import { registry } from "../lib/metrics.ts";

const mDecoded = registry.counter(
  "parley_tts_audio_served_bytes_total",
  "Stored TTS job audio read for serving, by stored codec (bytes as stored)",
);

export async function* jobPcm(
  database: Database,
  job: JobRow,
  tenantId: string,
  signal: AbortSignal,
): AsyncGenerator<Uint8Array, boolean> {
  const watch = jobWatchOf(database);
  const decoder = new StoredAudioDecoder();
  try {
    return yield* chunksInOrder();
  } finally {
    decoder.close();
  }

  async function* chunksInOrder(): AsyncGenerator<Uint8Array, boolean> {
    let next = 0;
    while (next < job.chunks_total && !signal.aborted) {
      const rows = await doneChunks(database, job.id, next, { withAudio: true, limit: 8 });
      let progressed = false;
      for (const r of rows) {
        if (r.idx !== next) break;
        next++;
        progressed = true;
        if (!r.pcm?.byteLength) continue;
        mDecoded.inc({ codec: r.codec }, r.pcm.byteLength);
        const pcm = await decoder.decode(
          { codec: r.codec, bytes: new Uint8Array(r.pcm), samples: r.samples },
          job.sample_rate,
        );
        if (pcm.byteLength) yield pcm;
      }
      if (next >= job.chunks_total) return true;
      if (progressed && rows.length === 8) continue;
      const now = await getJob(database, tenantId, job.id);
      if (!now || now.status === "failed" || now.status === "canceled") return false; // truncated: see status
      if (now.status === "succeeded") continue; // everything is there; read it
      await watch.wait(job.id, 1000, signal);
    }
    return next >= job.chunks_total;
  }
}
