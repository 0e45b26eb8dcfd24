/**
 * The typed IPC between the main isolate (ForwardWorker, RemoteForwardListener) and a room forward worker
 * (forward_worker.ts), defined once. A worker runs the werift peers of `shared` rooms' listeners; each is known
 * by a slot number that main assigns. Main → worker: commands (a numbered request when it wants a reply), one
 * `packets` message per room tick with every program packet and the slots that get it, and `events` batches.
 * Worker → main: replies, the listeners' state changes and `select` requests, and (every STATS_EVERY_MS) their
 * send statistics with the worker's metric families.
 */
import type { ErrorCode } from "../../lib/errors.ts";
import type { MetricFamily } from "../../lib/metrics.ts";
import type { LinkEvent } from "../../lib/worker_link.ts";
import type { ListenerEvent, ListenerSource } from "../../protocol/room_messages.ts";
import type { ListenerConfig } from "./listener_core.ts";
import type { ListenerCloseReason } from "./room_types.ts";

/** How often a worker reports statistics and metrics (and so proves it is alive). */
export const STATS_EVERY_MS = 250;

export interface ForwardListenerSpec {
  id: string;
  roomId: string;
  selected: ListenerSource;
  config: Partial<ListenerConfig>;
  recordGaps: boolean;
}

/** A listener's sends since its previous report (counters are deltas; maxGapMs is the largest since). */
export interface ForwardListenerStats {
  slot: number;
  frames: number;
  maxGapMs: number;
  onDataMs: number;
  onDataMaxMs: number;
  /** Every gap (ms) since the last report, when the spec asked to record them. */
  gapsMs?: number[];
}

/** An ApiError across the boundary (status, code and message are what the HTTP client sees). */
export interface ForwardError {
  status: number;
  code: ErrorCode;
  message: string;
}

export type ForwardCommand =
  /** First message to a new worker: nice steps below the main thread for its thread (0: leave it). */
  | { type: "init"; niceBoost: number }
  | { type: "start"; req: number; slot: number; spec: ForwardListenerSpec; offer: string }
  /**
   * payloads[i] goes to every slot in slots[i]. `sentAt`: when main posted it (performance.timeOrigin +
   * performance.now(), comparable across isolates).
   */
  | {
    type: "packets";
    /** When main posted it (epoch ms). */
    sentAt: number;
    /** When the room tick that made them was due (epoch ms; absent: a clock without a schedule). */
    at?: number;
    /** The worker sends them at `at` (else `sentAt`) + this (ms); 0 sends on arrival. */
    playoutMs: number;
    payloads: Uint8Array[];
    slots: Int32Array[];
  }
  | { type: "events"; items: Array<[slot: number, event: ListenerEvent]> }
  | { type: "close"; slot: number; reason: ListenerCloseReason }
  /** Peers open in the worker and how many of them still have timers (leak checks). */
  | { type: "count"; req: number }
  | { type: "shutdown"; req: number };

export type ForwardReply =
  | { type: "reply"; req: number; ok: true; sdp?: string; peers?: number; timers?: number }
  | { type: "reply"; req: number; ok: false; error: ForwardError };

export type ForwardWorkerEvent =
  | Extract<LinkEvent, { type: "ready" | "log" }>
  | ForwardReply
  | { type: "connected"; slot: number }
  | { type: "select"; slot: number; source: ListenerSource }
  | { type: "closed"; slot: number; reason: ListenerCloseReason }
  | { type: "stats"; items: ForwardListenerStats[]; metrics: MetricFamily[] };
