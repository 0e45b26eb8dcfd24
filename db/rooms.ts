/**
 * Rooms, their events and backing tracks in Postgres (schema: rooms, room_events, tracks).
 *
 * Placement: a room lives on one origin at a time. `claimRoomNode` records the node in the row only when the
 * row has none or its node is no longer live, in one conditional UPDATE, so two edges placing the same room
 * concurrently agree on one node (the loser re-reads the winner).
 *
 * Events: the origin holding the room gives each room event the next seq (continuing `rooms.last_seq`) and
 * appends it here in seq order; the insert, the `last_seq` bump and a NOTIFY on ROOM_EVENTS_CHANNEL
 * (`<room_id>:<seq>`) commit together, so an SSE viewer woken by the NOTIFY finds the row.
 */
import { and, asc, desc, eq, gt, isNull, lt, or, sql } from "drizzle-orm";
import type { Database } from "./client.ts";
import { roomEvents, rooms, tracks } from "./schema.ts";
import { ROOM_EVENTS_CHANNEL } from "../protocol/rooms.ts";
import type { RoomEvent } from "../protocol/room_messages.ts";

export type RoomRow = typeof rooms.$inferSelect;
export type TrackMeta = Omit<typeof tracks.$inferSelect, "pcm">;

export async function createRoom(
  database: Database,
  r: { tenantId: string; name: string; options: unknown },
): Promise<RoomRow> {
  const [row] = await database.db.insert(rooms).values({
    tenantId: r.tenantId,
    name: r.name,
    options: r.options,
  }).returning();
  return row;
}

/** A live (not deleted) room of the tenant, or null (another tenant's room looks missing). */
export async function roomOfTenant(
  database: Database,
  tenantId: string,
  id: string,
): Promise<RoomRow | null> {
  const rows = await database.db.select().from(rooms).where(
    and(eq(rooms.id, id), eq(rooms.tenantId, tenantId), isNull(rooms.deletedAt)),
  );
  return rows[0] ?? null;
}

/** Newest first, keyset pagination on (created_at, id). */
export async function listRooms(
  database: Database,
  tenantId: string,
  limit: number,
  before?: { createdAt: string; id: string },
): Promise<RoomRow[]> {
  const cond = before
    ? and(
      eq(rooms.tenantId, tenantId),
      isNull(rooms.deletedAt),
      or(
        lt(rooms.createdAt, before.createdAt),
        and(eq(rooms.createdAt, before.createdAt), lt(rooms.id, before.id)),
      ),
    )
    : and(eq(rooms.tenantId, tenantId), isNull(rooms.deletedAt));
  return await database.db.select().from(rooms).where(cond)
    .orderBy(desc(rooms.createdAt), desc(rooms.id)).limit(limit);
}

/** Soft delete (its events stay for replay until the tenant goes). True when it was live. */
export async function deleteRoom(database: Database, tenantId: string, id: string): Promise<boolean> {
  const rows = await database.db.update(rooms).set({ deletedAt: sql`now()`, nodeId: null }).where(
    and(eq(rooms.id, id), eq(rooms.tenantId, tenantId), isNull(rooms.deletedAt)),
  ).returning({ id: rooms.id });
  return rows.length > 0;
}

/**
 * Place the room on `nodeId` unless it already lives on another live node. Returns the node the room is on
 * after the call (the caller's, or the one that was there first).
 */
export async function claimRoomNode(
  database: Database,
  id: string,
  nodeId: string,
  timeoutMs: number,
): Promise<string | null> {
  const rows = await database.query<{ node_id: string }>(sql`
    update rooms set node_id = ${nodeId}
    where id = ${id} and deleted_at is null and (node_id is null or node_id = ${nodeId} or not exists (
      select 1 from nodes n where n.id = rooms.node_id and n.stopped_at is null
        and n.heartbeat_at > now() - make_interval(secs => ${timeoutMs / 1000})))
    returning node_id`);
  if (rows.length) return rows[0].node_id;
  const cur = await database.db.select({ nodeId: rooms.nodeId }).from(rooms).where(
    and(eq(rooms.id, id), isNull(rooms.deletedAt)),
  );
  return cur[0]?.nodeId ?? null;
}

export async function setRoomPublisher(
  database: Database,
  id: string,
  sessionId: string | null,
): Promise<void> {
  await database.db.update(rooms).set({ publisherSessionId: sessionId }).where(eq(rooms.id, id));
}

/** The origin forgot the room (closed): clear its placement if it is still this node's. */
export async function releaseRoomNode(database: Database, id: string, nodeId: string): Promise<void> {
  await database.db.update(rooms).set({ nodeId: null, publisherSessionId: null }).where(
    and(eq(rooms.id, id), eq(rooms.nodeId, nodeId)),
  );
}

/** Append one room event (already numbered by the room) and wake SSE viewers. Idempotent per seq. */
export async function appendRoomEvent(database: Database, roomId: string, ev: RoomEvent): Promise<void> {
  await database.db.transaction(async (tx) => {
    await tx.insert(roomEvents).values({ roomId, seq: ev.seq, type: ev.type, payload: ev })
      .onConflictDoNothing();
    await tx.update(rooms).set({ lastSeq: sql`greatest(${rooms.lastSeq}, ${ev.seq})` }).where(
      eq(rooms.id, roomId),
    );
    await tx.execute(sql`select pg_notify(${ROOM_EVENTS_CHANNEL}, ${`${roomId}:${ev.seq}`})`);
  });
}

/** Room events with seq > afterSeq (and ≤ upTo when given), in seq order. */
export async function roomEventsAfter(
  database: Database,
  roomId: string,
  afterSeq: number,
  limit = 1000,
  upTo?: number,
): Promise<RoomEvent[]> {
  const cond = upTo === undefined
    ? and(eq(roomEvents.roomId, roomId), gt(roomEvents.seq, afterSeq))
    : and(eq(roomEvents.roomId, roomId), gt(roomEvents.seq, afterSeq), sql`${roomEvents.seq} <= ${upTo}`);
  const rows = await database.db.select({ payload: roomEvents.payload }).from(roomEvents).where(cond)
    .orderBy(asc(roomEvents.seq)).limit(limit);
  return rows.map((r) => r.payload as RoomEvent);
}

export async function roomLastSeq(database: Database, roomId: string): Promise<number> {
  const rows = await database.query<{ s: number | null }>(
    sql`select max(seq) as s from room_events where room_id = ${roomId}`,
  );
  return Number(rows[0]?.s ?? 0);
}

// ------------------------------------------------------------------ tracks

const TRACK_META = {
  id: tracks.id,
  tenantId: tracks.tenantId,
  name: tracks.name,
  durationMs: tracks.durationMs,
  sizeBytes: tracks.sizeBytes,
  source: tracks.source,
  createdAt: tracks.createdAt,
};

export async function createTrack(
  database: Database,
  t: { tenantId: string; name: string; pcm: Uint8Array; durationMs: number; source: string },
): Promise<TrackMeta> {
  const [row] = await database.db.insert(tracks).values({
    tenantId: t.tenantId,
    name: t.name,
    pcm: t.pcm,
    durationMs: t.durationMs,
    sizeBytes: t.pcm.byteLength,
    source: t.source,
  }).returning(TRACK_META);
  return row;
}

export async function trackOfTenant(
  database: Database,
  tenantId: string,
  id: string,
): Promise<TrackMeta | null> {
  const rows = await database.db.select(TRACK_META).from(tracks).where(
    and(eq(tracks.id, id), eq(tracks.tenantId, tenantId)),
  );
  return rows[0] ?? null;
}

export async function listTracks(database: Database, tenantId: string, limit: number): Promise<TrackMeta[]> {
  return await database.db.select(TRACK_META).from(tracks).where(eq(tracks.tenantId, tenantId))
    .orderBy(desc(tracks.createdAt), desc(tracks.id)).limit(limit);
}

/** The track's PCM (16-bit LE mono 48 kHz), or null. */
export async function trackPcm(database: Database, tenantId: string, id: string): Promise<Int16Array | null> {
  const rows = await database.db.select({ pcm: tracks.pcm }).from(tracks).where(
    and(eq(tracks.id, id), eq(tracks.tenantId, tenantId)),
  );
  const b = rows[0]?.pcm;
  if (!b) return null;
  const copy = new Uint8Array(b.byteLength - (b.byteLength & 1));
  copy.set(b.subarray(0, copy.byteLength));
  return new Int16Array(copy.buffer);
}

export async function deleteTrack(database: Database, tenantId: string, id: string): Promise<boolean> {
  const rows = await database.db.delete(tracks).where(and(eq(tracks.id, id), eq(tracks.tenantId, tenantId)))
    .returning({ id: tracks.id });
  return rows.length > 0;
}
