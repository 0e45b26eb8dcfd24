/**
 * Backing tracks: POST /v1/tracks (audio/wav body; `?name=`), GET /v1/tracks, GET/DELETE /v1/tracks/{id}.
 * Stored as 16-bit mono 48 kHz PCM in Postgres so any origin can play them (lib/audio/track_wav.ts converts
 * and says exactly why a file is refused). Limits: TRACK_MAX_BYTES (413 before reading past it),
 * TRACK_MAX_DURATION_MS (413). Nothing is stored for a refused upload.
 */
import { z } from "zod";
import { createTrack, deleteTrack, listTracks, type TrackMeta, trackOfTenant } from "../../db/rooms.ts";
import { ApiError } from "../../lib/errors.ts";
import { readBodyLimited, validationError } from "../../lib/http.ts";
import { registry } from "../../lib/metrics.ts";
import { trackFromWav } from "../../lib/audio/track_wav.ts";
import type { TrackInfo } from "../../protocol/rooms.ts";
import type { EdgeApp, EdgeContext } from "../context.ts";
import { guard } from "../context.ts";

const uploads = registry.counter("parley_edge_track_uploads_total", "Backing track uploads, by outcome");
const TRACK_ID = z.uuid();
export const TrackUploadQuery = z.object({ name: z.string().max(200).default("") });

function trackInfo(t: TrackMeta): TrackInfo {
  return {
    id: t.id,
    name: t.name,
    duration_ms: t.durationMs,
    size_bytes: t.sizeBytes,
    sample_rate: 48000,
    channels: 1,
    bits_per_sample: 16,
    source: t.source,
    created_at: t.createdAt,
  };
}

export function trackRoutes(app: EdgeApp, ctx: EdgeContext): void {
  const auth = guard(ctx, "sessions");

  app.post("/v1/tracks", auth, async (c) => {
    const p = c.get("principal");
    const type = (c.req.header("content-type") ?? "").toLowerCase().split(";")[0].trim();
    if (!["audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"].includes(type)) {
      uploads.inc({ outcome: "415" });
      throw new ApiError(415, "unsupported_media_type", "expected Content-Type: audio/wav");
    }
    const q = TrackUploadQuery.safeParse(c.req.query());
    if (!q.success) throw validationError(q.error.issues);
    let track;
    try {
      const bytes = await readBodyLimited(c, ctx.config.TRACK_MAX_BYTES);
      track = trackFromWav(bytes, { maxDurationMs: ctx.config.TRACK_MAX_DURATION_MS });
    } catch (e) {
      uploads.inc({ outcome: e instanceof ApiError ? String(e.status) : "error" });
      throw e;
    }
    if (track.samples.length < 480) {
      uploads.inc({ outcome: "400" });
      throw new ApiError(400, "bad_request", "track is shorter than one 10 ms frame");
    }
    const pcm = new Uint8Array(track.samples.buffer, track.samples.byteOffset, track.samples.byteLength);
    const row = await createTrack(ctx.database, {
      tenantId: p.tenantId,
      name: q.data.name,
      pcm,
      durationMs: track.durationMs,
      source: track.source,
    });
    uploads.inc({ outcome: "created" });
    c.get("log").info("track stored", {
      track_id: row.id,
      duration_ms: row.durationMs,
      source: track.source,
      converted: track.converted,
    });
    c.header("Location", `/v1/tracks/${row.id}`);
    return c.json(trackInfo(row), 201);
  });

  app.get("/v1/tracks", auth, async (c) => {
    const rows = await listTracks(ctx.database, c.get("principal").tenantId, 200);
    return c.json({ tracks: rows.map(trackInfo) });
  });

  app.get("/v1/tracks/:id", auth, async (c) => {
    const id = c.req.param("id") ?? "";
    const row = TRACK_ID.safeParse(id).success
      ? await trackOfTenant(ctx.database, c.get("principal").tenantId, id)
      : null;
    if (!row) throw new ApiError(404, "not_found", "no such track");
    return c.json(trackInfo(row));
  });

  app.delete("/v1/tracks/:id", auth, async (c) => {
    const id = c.req.param("id") ?? "";
    const ok = TRACK_ID.safeParse(id).success &&
      await deleteTrack(ctx.database, c.get("principal").tenantId, id);
    if (!ok) throw new ApiError(404, "not_found", "no such track");
    return c.body(null, 204);
  });
}
