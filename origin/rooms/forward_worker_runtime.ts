/**
 * What a room forward worker does (forward_worker.ts is only its entry point): it runs `shared` rooms'
 * listeners (ForwardListener: a werift peer, its events channel and timers) off the main isolate, so their
 * per-packet cost (SRTP, one UDP send per listener every 20 ms) and their DTLS/SCTP work do not delay the
 * room ticks and the sessions' paced audio there. Main stays the one controller: it decides which packet each
 * listener gets, and this side only sends what it is told (`packets`: each payload once per message, with
 * the slots that get it).
 *
 * When it sends them is the worker's: each tick's packets go out `playoutMs` after the tick was due (`at`), on
 * this worker's timer. Main's ticks fire late now and then (its event loop also runs sessions, pipelines and
 * the database) and the message needs a moment to arrive; sent on arrival, every such delay would widen the
 * listeners' gaps. Scheduled from the due instant, only this worker's own timer lateness is left.
 *
 * Every STATS_EVERY_MS while it has listeners it posts their send statistics (deltas) and the worker's metric
 * families; a listener that closes here (client gone, ICE, slow consumer) is reported with its reason.
 */
import { Buffer } from "node:buffer";
import { ApiError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";
import { raiseThreadPriority } from "../../lib/thread_priority.ts";
import { ForwardListener } from "./forward_listener.ts";
import {
  type ForwardCommand,
  type ForwardError,
  type ForwardListenerStats,
  type ForwardWorkerEvent,
  STATS_EVERY_MS,
} from "./forward_worker_types.ts";

const packetDelay = registry.histogram(
  "parley_room_forward_packet_delay_seconds",
  "Room forward worker: main posted a tick's packets → the worker sends them (its queue and its load)",
  [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 5],
);
const loopLag = registry.histogram(
  "parley_room_forward_worker_lag_seconds",
  "Room forward worker: how late its report timer fires (the worker's event loop is that busy)",
  [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
);

const playoutLateness = registry.histogram(
  "parley_room_forward_playout_lateness_seconds",
  "Room forward worker: a tick's packets sent → the instant they were scheduled for (due + playout delay)",
  [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1],
);

const lateDropped = registry.counter(
  "parley_room_forward_late_dropped_total",
  "Room forward worker: ticks' packets not sent because they could leave only more than 100 ms after their " +
    "instant (main or the worker was behind)",
);

/**
 * A tick's packets that the worker could send only later than this after their instant are not sent: audio
 * that late is of no use to the listeners' jitter buffers, and skipping it (cheap) lets a worker that fell
 * behind catch up instead of building a backlog that grows until it is declared lost.
 */
export const LATE_DROP_MS = 100;

/** A report timer firing this much later than due is logged: the worker's thread was stopped that long. */
const STALL_LOG_MS = 100;

export type PostToMain = (msg: ForwardWorkerEvent) => void;

type PacketsCommand = Extract<ForwardCommand, { type: "packets" }>;

export class ForwardWorkerRuntime {
  readonly #listeners = new Map<number, ForwardListener>();
  readonly #post: PostToMain;
  readonly #log: Logger;
  readonly #timer: ReturnType<typeof setInterval>;
  /** Ticks' packets waiting for their send instant (epoch ms), in arrival order (ticks come in order). */
  readonly #playout: Array<{ sendAt: number; cmd: PacketsCommand }> = [];
  #playoutTimer: ReturnType<typeof setTimeout> | undefined;
  #reportDue: number;
  #closed = false;

  constructor(o: { post: PostToMain; log: Logger }) {
    this.#post = o.post;
    this.#log = o.log;
    this.#reportDue = performance.now() + STATS_EVERY_MS;
    this.#timer = setInterval(() => {
      const now = performance.now();
      const lagMs = Math.max(0, now - this.#reportDue);
      loopLag.observe(lagMs / 1000);
      if (lagMs > STALL_LOG_MS) this.#stalled(lagMs);
      this.#reportDue = now + STATS_EVERY_MS;
      this.#report();
    }, STATS_EVERY_MS);
  }

  /** One command from main. Never throws: a failed command is logged (and answered, when it has a request). */
  handle(cmd: ForwardCommand): void {
    try {
      this.#dispatch(cmd);
    } catch (err) {
      this.#log.error("forward worker command failed", { type: cmd.type, err: err as Error });
      if ("req" in cmd) this.#post({ type: "reply", req: cmd.req, ok: false, error: toForwardError(err) });
    }
  }

  #dispatch(cmd: ForwardCommand): void {
    switch (cmd.type) {
      case "init": {
        if (cmd.niceBoost <= 0) return;
        const r = raiseThreadPriority(0, cmd.niceBoost);
        this.#log[r.policy === "nice" ? "info" : "warn"]("forward worker thread priority", {
          policy: r.policy,
          detail: r.detail,
        });
        return;
      }
      case "start":
        return this.#start(cmd);
      case "packets": {
        const now = performance.timeOrigin + performance.now();
        packetDelay.observe(Math.max(0, now - cmd.sentAt) / 1000);
        const sendAt = (cmd.at ?? cmd.sentAt) + cmd.playoutMs;
        if (this.#playout.length === 0 && sendAt <= now) this.#send(cmd, now - sendAt);
        else {
          this.#playout.push({ sendAt, cmd });
          this.#armPlayout(now);
        }
        return;
      }
      case "events":
        for (const [slot, ev] of cmd.items) this.#listeners.get(slot)?.send(ev);
        return;
      case "close":
        this.#listeners.get(cmd.slot)?.close(cmd.reason);
        return;
      case "count": {
        let timers = 0;
        for (const l of this.#listeners.values()) if (l.timersPending) timers++;
        this.#post({ type: "reply", req: cmd.req, ok: true, peers: this.#listeners.size, timers });
        return;
      }
      case "shutdown":
        this.#closed = true;
        clearTimeout(this.#playoutTimer);
        this.#playout.length = 0;
        for (const l of [...this.#listeners.values()]) l.close("room_closed");
        clearInterval(this.#timer);
        this.#report();
        this.#post({ type: "reply", req: cmd.req, ok: true });
        return;
    }
  }

  #start(cmd: Extract<ForwardCommand, { type: "start" }>): void {
    const { slot, spec, req } = cmd;
    if (this.#closed) throw new ApiError(503, "unavailable", "room forward worker is shutting down");
    if (this.#listeners.has(slot)) throw new Error(`slot ${slot} is taken`);
    const listener = new ForwardListener({
      ...spec,
      log: this.#log,
      onConnected: () => this.#post({ type: "connected", slot }),
      onSelect: (_l, source) => this.#post({ type: "select", slot, source }),
      onClosed: (l, reason) => {
        if (this.#listeners.get(slot) === l) this.#listeners.delete(slot);
        this.#post({ type: "closed", slot, reason });
      },
    });
    this.#listeners.set(slot, listener);
    listener.start(cmd.offer).then(
      (sdp) => this.#post({ type: "reply", req, ok: true, sdp }),
      (err) => this.#post({ type: "reply", req, ok: false, error: toForwardError(err) }),
    );
  }

  /** The timer for the first waiting tick. */
  #armPlayout(now: number): void {
    if (this.#playoutTimer !== undefined || this.#playout.length === 0) return;
    this.#playoutTimer = setTimeout(() => {
      this.#playoutTimer = undefined;
      this.#drainPlayout();
    }, Math.max(0, this.#playout[0].sendAt - now));
  }

  /** Every waiting tick whose instant has come, in order; then the timer for the next. */
  #drainPlayout(): void {
    if (this.#closed) return;
    let now = performance.timeOrigin + performance.now();
    while (this.#playout.length > 0 && this.#playout[0].sendAt <= now) {
      const { sendAt, cmd } = this.#playout.shift()!;
      this.#send(cmd, now - sendAt);
      now = performance.timeOrigin + performance.now();
    }
    this.#armPlayout(now);
  }

  /** One tick's packets to their listeners, `lateMs` after their instant (too late: skipped, counted). */
  #send(cmd: PacketsCommand, lateMs: number): void {
    if (lateMs > LATE_DROP_MS) {
      let n = 0;
      for (const slots of cmd.slots) {
        n += slots.length;
        for (const slot of slots) this.#listeners.get(slot)?.skipPacket();
      }
      lateDropped.inc(undefined, n);
      this.#behind(lateMs);
      return;
    }
    playoutLateness.observe(Math.max(0, lateMs) / 1000);
    for (let i = 0; i < cmd.payloads.length; i++) {
      // werift sends Buffers; the view is made once per packet, not once per listener.
      const p = cmd.payloads[i];
      const buf = Buffer.from(p.buffer, p.byteOffset, p.byteLength);
      for (const slot of cmd.slots[i]) this.#listeners.get(slot)?.pushPacket(buf);
    }
  }

  /** The worker's own timer fired far too late: its thread was stopped. */
  #stalled(lagMs: number): void {
    this.#warnRarely("stalled", "forward worker stalled", () => {
      const mem = Deno.memoryUsage();
      return {
        lag_ms: Math.round(lagMs),
        at: Math.round(performance.timeOrigin + performance.now() - lagMs),
        heap_used_mib: Math.round(mem.heapUsed / 1048576),
        heap_total_mib: Math.round(mem.heapTotal / 1048576),
      };
    });
  }

  /** A tick's packets reached this worker too late: it is behind. */
  #behind(delayMs: number): void {
    this.#warnRarely("behind", "forward worker is behind", () => ({ delay_ms: Math.round(delayMs) }));
  }

  readonly #warnedAt = { stalled: -Infinity, behind: -Infinity };
  /** One warning of a kind at most every 5 s: a worker that is behind or stalling stays so for a while. */
  #warnRarely(kind: "stalled" | "behind", msg: string, fields: () => Record<string, number>): void {
    const now = performance.now();
    if (now - this.#warnedAt[kind] < 5000) return;
    this.#warnedAt[kind] = now;
    this.#log.warn(msg, { ...fields(), listeners: this.#listeners.size });
  }

  #reportedIdle = false;

  /**
   * Every listener's sends since the last report, and this worker's metrics. An idle worker (no listener)
   * reports once and then stays quiet: nothing changes, and main only needs proof of life while it has listeners.
   */
  #report(): void {
    const idle = this.#listeners.size === 0;
    if (idle && this.#reportedIdle && !this.#closed) return;
    this.#reportedIdle = idle;
    const items: ForwardListenerStats[] = [];
    for (const [slot, l] of this.#listeners) {
      if (l.frames === 0 && !l.gapsMs?.length) continue;
      items.push({
        slot,
        frames: l.frames,
        maxGapMs: l.maxGapMs,
        onDataMs: l.onDataMs,
        onDataMaxMs: l.onDataMaxMs,
        gapsMs: l.gapsMs?.splice(0),
      });
      l.frames =
        l.maxGapMs =
        l.onDataMs =
        l.onDataMaxMs =
          0;
    }
    this.#post({ type: "stats", items, metrics: registry.snapshot() });
  }
}

function toForwardError(err: unknown): ForwardError {
  if (err instanceof ApiError) return { status: err.status, code: err.code, message: err.message };
  return { status: 500, code: "internal", message: "listener setup failed in the forward worker" };
}
