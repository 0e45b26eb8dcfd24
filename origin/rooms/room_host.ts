/**
 * The origin's rooms backed by Postgres: materializes a Room in the RoomManager from its `rooms` row (options,
 * backing track PCM from `tracks`, seq continuing from the stored events) the first time a publisher or a
 * listener needs it here, persists every room event (room_events + NOTIFY, in seq order, one chain per room)
 * for SSE viewers on any edge, and keeps the row's publisher column current.
 *
 * Which origin holds a room is decided by the edge (db/rooms.ts claimRoomNode) before it calls here; this class
 * only refuses rooms that are deleted or belong to another tenant. `close()` closes the manager (every room and
 * listener) and waits for the pending event writes.
 */
import type { Database } from "../../db/client.ts";
import {
  appendRoomEvent,
  releaseRoomNode,
  type RoomRow,
  setRoomPublisher,
  trackPcm,
} from "../../db/rooms.ts";
import { eq } from "drizzle-orm";
import { rooms as roomsTable } from "../../db/schema.ts";
import { log as rootLog, type Logger } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";
import type { RoomEvent } from "../../protocol/room_messages.ts";
import { RoomOptionsInput } from "../../protocol/rooms.ts";
import { BackingTrack } from "./backing_track.ts";
import type { Room } from "./room.ts";
import type { RoomManager } from "./room_manager.ts";
import {
  RoomBusyError,
  type RoomListener,
  RoomNotFoundError,
  type RoomOptions,
  type RoomPublisher,
  type RoomPublisherFeed,
} from "./room_types.ts";

const persistFailures = registry.counter(
  "parley_room_event_persist_failures_total",
  "Room events that could not be stored (SSE viewers miss them)",
);
const persistSeconds = registry.histogram(
  "parley_room_event_persist_seconds",
  "Room event fanned out → stored and notified",
);

/** Row options (snake case, validated on the way in) → the room core's options. */
export function roomOptionsOf(row: Pick<RoomRow, "name" | "options">): RoomOptions {
  const o = RoomOptionsInput.parse(row.options ?? {});
  return {
    name: row.name || undefined,
    defaultSource: o.default_source,
    idleSource: o.idle_source,
    idleAfterMs: o.idle_after_ms,
    maxListeners: o.max_listeners,
    publisherPolicy: o.publisher_policy,
    crossfadeMs: o.crossfade_ms,
    audioProfile: o.audio_profile,
  };
}

export class RoomHost {
  readonly manager: RoomManager;
  readonly #db: Database;
  readonly #nodeId: string;
  readonly #log: Logger;
  readonly #opening = new Map<string, Promise<Room>>();
  readonly #chains = new Map<string, Promise<void>>();
  #closed = false;

  constructor(opts: { database: Database; nodeId: string; manager: RoomManager; log?: Logger }) {
    this.#db = opts.database;
    this.#nodeId = opts.nodeId;
    this.manager = opts.manager;
    this.#log = (opts.log ?? rootLog).child({ component: "room_host" });
  }

  /** The room, materialized here from its row if needed. 404 for a missing, deleted or foreign room. */
  ensure(roomId: string, tenantId: string): Promise<Room> {
    if (this.#closed) return Promise.reject(new RoomNotFoundError(`room ${roomId}`));
    const have = this.manager.get(roomId);
    if (have && !have.closed) {
      if (have.tenantId !== tenantId) return Promise.reject(new RoomNotFoundError(`room ${roomId}`));
      return Promise.resolve(have);
    }
    let p = this.#opening.get(roomId);
    if (!p) {
      p = this.#open(roomId, tenantId).finally(() => this.#opening.delete(roomId));
      this.#opening.set(roomId, p);
    }
    return p.then((room) => {
      if (room.tenantId !== tenantId) throw new RoomNotFoundError(`room ${roomId}`);
      return room;
    });
  }

  async #open(roomId: string, tenantId: string): Promise<Room> {
    const rows = await this.#db.db.select().from(roomsTable).where(eq(roomsTable.id, roomId));
    const row = rows[0];
    if (!row || row.deletedAt || row.tenantId !== tenantId) throw new RoomNotFoundError(`room ${roomId}`);
    const options = roomOptionsOf(row);
    const trackId = RoomOptionsInput.parse(row.options ?? {}).track_id;
    let track: BackingTrack | null = null;
    if (trackId) {
      const pcm = await trackPcm(this.#db, tenantId, trackId);
      if (pcm) track = new BackingTrack(trackId, pcm);
      else {this.#log.warn("room's backing track is gone; idling on silence", {
          room_id: roomId,
          track_id: trackId,
        });}
    }
    const room = this.manager.create(roomId, options, {
      tenantId,
      track,
      initialSeq: Number(row.lastSeq),
      onEvent: (ev) => this.#persist(roomId, ev),
      onClosed: () => {
        releaseRoomNode(this.#db, roomId, this.#nodeId).catch(() => {});
      },
    });
    this.#log.info("room materialized", { room_id: roomId, last_seq: row.lastSeq, track_id: trackId });
    return room;
  }

  #persist(roomId: string, ev: RoomEvent): void {
    const queued = performance.now();
    const prev = this.#chains.get(roomId) ?? Promise.resolve();
    const next = prev.then(async () => {
      try {
        await appendRoomEvent(this.#db, roomId, ev);
        persistSeconds.observe((performance.now() - queued) / 1000);
      } catch (err) {
        persistFailures.inc();
        this.#log.warn("room event not stored", { room_id: roomId, seq: ev.seq, err: String(err) });
      }
    });
    this.#chains.set(roomId, next);
    void next.then(() => {
      if (this.#chains.get(roomId) === next) this.#chains.delete(roomId);
    });
  }

  /** 409 when the room has a publisher and refuses a second one (checked before the session is stored). */
  async assertCanPublish(roomId: string, tenantId: string): Promise<void> {
    const room = await this.ensure(roomId, tenantId);
    if (room.publisher && room.options.publisherPolicy !== "replace") {
      throw new RoomBusyError(roomId, room.publisher);
    }
  }

  async attachPublisher(
    roomId: string,
    tenantId: string,
    publisher: RoomPublisher,
  ): Promise<RoomPublisherFeed> {
    const room = await this.ensure(roomId, tenantId);
    const feed = room.attachPublisher(publisher);
    setRoomPublisher(this.#db, roomId, publisher.sessionId).catch(() => {});
    const db = this.#db;
    return {
      roomId,
      get detached() {
        return feed.detached;
      },
      onInboundFrame: (f) => feed.onInboundFrame(f),
      onOutboundFrame: (s) => feed.onOutboundFrame(s),
      onEvent: (e) => feed.onEvent(e),
      detach: () => {
        if (feed.detached) return;
        feed.detach();
        if (room.publisher === null) setRoomPublisher(db, roomId, null).catch(() => {});
      },
    };
  }

  async addListener(
    roomId: string,
    tenantId: string,
    offer: string,
    opts: { id: string; source: "speaker" | "voice" | "room" },
  ): Promise<{ listener: RoomListener; answer: string }> {
    const room = await this.ensure(roomId, tenantId);
    return await room.addListener(offer, opts);
  }

  /** Ends the listener; false when it is not here. */
  removeListener(roomId: string, listenerId: string): boolean {
    return this.manager.get(roomId)?.removeListener(listenerId) ?? false;
  }

  /** Close the room here (its listeners end); the row's placement is cleared. */
  closeRoom(roomId: string): boolean {
    return this.manager.delete(roomId);
  }

  /** Close every room and wait for the event writes in flight. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const workers = this.manager.close();
    await Promise.all([...this.#chains.values()]);
    await workers;
  }
}
