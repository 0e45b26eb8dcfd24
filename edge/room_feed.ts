/**
 * Room events for SSE viewers, one reader per room per edge process: one LISTEN on ROOM_EVENTS_CHANNEL for the
 * whole process; a NOTIFY (`<room_id>:<seq>`) wakes the room's reader, which reads the rows after its cursor once
 * and hands them to every viewer of that room in memory. So N viewers cost one query per wake-up, not N.
 *
 * No gap, no duplicate: a viewer joins with `join()`, which returns the reader's cursor C at that instant and
 * registers the viewer in the same synchronous step; the viewer replays (Last-Event-ID, C] from Postgres itself,
 * and the reader delivers everything after C. A notification is only a wake-up (a lost one costs latency: a
 * reconnect of the LISTEN, or the 2 s poll, reads again).
 */
import type { Database } from "../db/client.ts";
import { roomEventsAfter, roomLastSeq } from "../db/rooms.ts";
import { registry } from "../lib/metrics.ts";
import type { RoomEvent } from "../protocol/room_messages.ts";
import { ROOM_EVENTS_CHANNEL } from "../protocol/rooms.ts";

const readerReads = registry.counter("parley_edge_room_feed_reads_total", "Room feed reads of room_events");
const POLL_MS = 2_000;

export type ViewerSink = (events: RoomEvent[]) => void;

class RoomReader {
  cursor = 0;
  readonly viewers = new Set<ViewerSink>();
  #reading = false;
  #again = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  readonly ready: Promise<void>;

  constructor(private readonly database: Database, readonly roomId: string) {
    this.ready = roomLastSeq(database, roomId).then((s) => {
      this.cursor = Math.max(this.cursor, s);
    });
    this.#timer = setInterval(() => this.wake(), POLL_MS);
  }

  wake(): void {
    if (this.#reading) {
      this.#again = true;
      return;
    }
    this.#reading = true;
    void (async () => {
      try {
        await this.ready;
        do {
          this.#again = false;
          for (;;) {
            const rows = await roomEventsAfter(this.database, this.roomId, this.cursor, 500);
            readerReads.inc();
            if (rows.length === 0) break;
            this.cursor = rows[rows.length - 1].seq;
            for (const v of [...this.viewers]) v(rows);
            if (rows.length < 500) break;
          }
        } while (this.#again);
      } catch {
        // The next NOTIFY or poll retries from the same cursor.
      } finally {
        this.#reading = false;
      }
    })();
  }

  close(): void {
    clearInterval(this.#timer);
  }
}

export class RoomEventFanout {
  readonly #readers = new Map<string, RoomReader>();
  #listening?: Promise<unknown>;

  constructor(private readonly database: Database) {}

  get viewers(): number {
    let n = 0;
    for (const r of this.#readers.values()) n += r.viewers.size;
    return n;
  }

  /**
   * Register a viewer; resolves with the cursor up to which the viewer must replay from Postgres itself, and
   * the function that unregisters it.
   */
  async join(roomId: string, sink: ViewerSink): Promise<{ upTo: number; leave: () => void }> {
    this.#listening ??= this.database.listen(
      ROOM_EVENTS_CHANNEL,
      (payload) => this.#readers.get(payload.slice(0, payload.lastIndexOf(":")))?.wake(),
      () => {
        for (const r of this.#readers.values()) r.wake();
      },
    ).catch(() => undefined); // no LISTEN → the poll still delivers
    await this.#listening;
    let reader: RoomReader;
    for (;;) {
      let r = this.#readers.get(roomId);
      if (!r) this.#readers.set(roomId, r = new RoomReader(this.database, roomId));
      await r.ready;
      // The last viewer may have left (and the reader closed) while this one waited.
      if (this.#readers.get(roomId) === r) {
        reader = r;
        break;
      }
    }
    reader.viewers.add(sink);
    const upTo = reader.cursor;
    return {
      upTo,
      leave: () => {
        reader.viewers.delete(sink);
        if (reader.viewers.size === 0 && this.#readers.get(roomId) === reader) {
          reader.close();
          this.#readers.delete(roomId);
        }
      },
    };
  }
}

const fanouts = new WeakMap<Database, RoomEventFanout>();

/** The process-wide fan-out of a database (created on first use). */
export function roomEventFanout(database: Database): RoomEventFanout {
  let f = fanouts.get(database);
  if (!f) fanouts.set(database, f = new RoomEventFanout(database));
  return f;
}
