/**
 * The origin's rooms: creates, finds and closes Rooms, and exposes their gauges (rooms, listeners per room and
 * on this origin). The HTTP layer (REST routes, WHEP listener routes) and the database rows sit on top of it.
 * `close()` closes every room (and so every listener), once.
 */
import { ApiError } from "../../lib/errors.ts";
import { log as rootLog, type Logger } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";
import type { BackingTrack } from "./backing_track.ts";
import { ForwardPool, type ForwardPoolOptions } from "./forward_pool.ts";
import type { ListenerConfig } from "./listener.ts";
import { Room, type RoomInit, type RoomSummary } from "./room.ts";
import { RoomNotFoundError, type RoomOptions, type TickClock } from "./room_types.ts";

const roomsGauge = registry.gauge("parley_rooms", "Open rooms on this origin");
const listenersGauge = registry.gauge("parley_room_listeners", "Listeners per room");
const originListeners = registry.gauge("parley_origin_room_listeners", "Room listeners on this origin");

export interface RoomManagerOptions {
  /** Rooms at most on this origin. Default 100. */
  maxRooms?: number;
  clock?: TickClock;
  listenerConfig?: Partial<ListenerConfig>;
  idle?: { speechRms?: number };
  log?: Logger;
  recordGaps?: boolean;
  /** Listeners' real-time libwebrtc send threads → SCHED_OTHER (origin/session/wrtc_threads.ts). Default true. */
  demoteThreads?: boolean;
  /**
   * Where `shared` rooms' listener peers run (forward_pool.ts): `workers` (default 1; 0 runs them in this
   * isolate), and the workers' options (tests: `spawn`, `deadAfterMs`).
   */
  forward?: Partial<Omit<ForwardPoolOptions, "log">>;
}

export class RoomManager {
  readonly maxRooms: number;
  readonly #opts: RoomManagerOptions;
  readonly #log: Logger;
  readonly #rooms = new Map<string, Room>();
  readonly forwardPool: ForwardPool | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(opts: RoomManagerOptions = {}) {
    this.#opts = opts;
    this.maxRooms = opts.maxRooms ?? 100;
    this.#log = (opts.log ?? rootLog).child({ component: "room_manager" });
    const workers = opts.forward?.workers ?? 1;
    this.forwardPool = workers > 0 ? new ForwardPool({ ...opts.forward, workers, log: opts.log }) : undefined;
    roomsGauge.collect(() => this.#rooms.size);
    listenersGauge.collect(() => [...this.#rooms.values()].map((r) => [{ room: r.id }, r.listenerCount]));
    originListeners.collect(() => this.listenerCount);
  }

  get size(): number {
    return this.#rooms.size;
  }

  get listenerCount(): number {
    let n = 0;
    for (const r of this.#rooms.values()) n += r.listenerCount;
    return n;
  }

  /** Open a room. 409 when the id is taken, 429 past maxRooms, 503 once the manager is closed. */
  create(
    id: string,
    options: Partial<RoomOptions> = {},
    extra: {
      tenantId?: string;
      track?: BackingTrack | null;
      initialSeq?: number;
      onEvent?: RoomInit["onEvent"];
      onClosed?: (room: Room) => void;
    } = {},
  ): Room {
    if (this.#closed) throw new ApiError(503, "unavailable", "origin is shutting down");
    if (this.#rooms.has(id)) throw new ApiError(409, "conflict", `room ${id} already exists on this origin`);
    if (this.#rooms.size >= this.maxRooms) {
      throw new ApiError(429, "limit_exceeded", `this origin hosts ${this.maxRooms} rooms at most`);
    }
    const room = new Room({
      id,
      tenantId: extra.tenantId,
      options,
      track: extra.track,
      clock: this.#opts.clock,
      listenerConfig: this.#opts.listenerConfig,
      idle: this.#opts.idle,
      log: this.#opts.log,
      recordGaps: this.#opts.recordGaps,
      demoteThreads: this.#opts.demoteThreads,
      forwardPool: this.forwardPool,
      initialSeq: extra.initialSeq,
      onEvent: extra.onEvent,
      onClosed: (r) => {
        if (this.#rooms.get(r.id) === r) this.#rooms.delete(r.id);
        extra.onClosed?.(r);
      },
    });
    this.#rooms.set(id, room);
    return room;
  }

  get(id: string): Room | undefined {
    return this.#rooms.get(id);
  }

  /** The room, or RoomNotFoundError (404). */
  require(id: string): Room {
    const r = this.#rooms.get(id);
    if (!r) throw new RoomNotFoundError(`room ${id}`);
    return r;
  }

  list(): RoomSummary[] {
    return [...this.#rooms.values()].map((r) => r.summary());
  }

  /** Close one room and its listeners. Returns false when unknown. */
  delete(id: string): boolean {
    const r = this.#rooms.get(id);
    if (!r) return false;
    r.close();
    return true;
  }

  /**
   * Close every room (at once: no listener gets anything more), then the forward workers (their peers closed,
   * then the workers ended); resolves when they are. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    const n = this.#rooms.size;
    for (const r of [...this.#rooms.values()]) r.close();
    this.#rooms.clear();
    this.#log.info("rooms closed", { rooms: n });
    return this.#closing = this.forwardPool?.close() ?? Promise.resolve();
  }
}
