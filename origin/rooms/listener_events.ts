/**
 * A listener's outgoing event queue on its `events` data channel, with backpressure.
 *
 * While the channel's `bufferedAmount` is at or below `highWaterBytes`, events go straight out. Above it they
 * wait here and are flushed (in order) as the buffer drains. While waiting, partial captions are coalesced:
 * a newer partial of the same segment replaces an older one (moved to the end, so seq order holds), a
 * confirmed caption drops the pending partials of its segment, and at most `maxPartials` partials wait (the
 * oldest is dropped). Confirmed captions, telop, room state and source events are never dropped: if more than
 * `maxPending` of them wait, the listener is too slow to follow the room and `onOverflow` is called (its owner
 * disconnects it) rather than letting memory grow or silently losing captions.
 */
import { registry } from "../../lib/metrics.ts";
import type { ListenerEvent } from "../../protocol/room_messages.ts";
import type { RTCDataChannel } from "../session/wrtc.ts";

const droppedTotal = registry.counter(
  "parley_room_listener_events_dropped_total",
  "Partial captions a slow listener did not get (coalesced or dropped under backpressure)",
);

export interface EventChannel {
  readonly readyState: RTCDataChannel["readyState"];
  readonly bufferedAmount: number;
  send(data: string): void;
}

export interface ListenerEventQueueOptions {
  highWaterBytes?: number;
  maxPartials?: number;
  maxPending?: number;
  /** Flush period while events wait. Default 20 ms. */
  flushMs?: number;
  onOverflow: () => void;
}

function isPartial(e: ListenerEvent): e is Extract<ListenerEvent, { type: "caption" }> {
  return e.type === "caption" && e.status === "partial";
}

export class ListenerEventQueue {
  readonly #high: number;
  readonly #maxPartials: number;
  readonly #maxPending: number;
  readonly #flushMs: number;
  readonly #onOverflow: () => void;
  #channel: EventChannel | null = null;
  #pending: ListenerEvent[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #overflowed = false;
  sent = 0;
  dropped = 0;
  /** Highest seq sent. */
  lastSeq = 0;

  constructor(opts: ListenerEventQueueOptions) {
    this.#high = opts.highWaterBytes ?? 64 * 1024;
    this.#maxPartials = opts.maxPartials ?? 4;
    this.#maxPending = opts.maxPending ?? 1000;
    this.#flushMs = opts.flushMs ?? 20;
    this.#onOverflow = opts.onOverflow;
  }

  get pending(): number {
    return this.#pending.length;
  }
  get flushScheduled(): boolean {
    return this.#timer !== undefined;
  }

  /** The channel is open: send what waited. */
  attach(channel: EventChannel): void {
    if (this.#closed) return;
    this.#channel = channel;
    this.flush();
  }

  push(ev: ListenerEvent): void {
    if (this.#closed) return;
    if (this.#pending.length === 0 && this.#canSend()) {
      this.#send(ev);
      return;
    }
    // A newer partial, or the confirmed result, of a segment supersedes its waiting partials.
    if (ev.type === "caption") {
      const seg = ev.segment_id;
      this.#dropWhere((p) => isPartial(p) && p.segment_id === seg);
    }
    this.#pending.push(ev);
    let partials = 0;
    for (const p of this.#pending) if (isPartial(p)) partials++;
    if (partials > this.#maxPartials) {
      const i = this.#pending.findIndex(isPartial);
      this.#pending.splice(i, 1);
      this.#countDrop();
    }
    if (
      this.#pending.length - Math.min(partials, this.#maxPartials) > this.#maxPending && !this.#overflowed
    ) {
      this.#overflowed = true;
      this.#onOverflow();
      return;
    }
    this.#schedule();
  }

  #dropWhere(pred: (e: ListenerEvent) => boolean): void {
    const before = this.#pending.length;
    this.#pending = this.#pending.filter((e) => !pred(e));
    for (let i = this.#pending.length; i < before; i++) this.#countDrop();
  }

  #countDrop(): void {
    this.dropped++;
    droppedTotal.inc();
  }

  #canSend(): boolean {
    const ch = this.#channel;
    return !!ch && ch.readyState === "open" && ch.bufferedAmount <= this.#high;
  }

  #send(ev: ListenerEvent): void {
    try {
      this.#channel!.send(JSON.stringify(ev));
      this.sent++;
      if ("seq" in ev) this.lastSeq = ev.seq;
    } catch {
      // The channel is closing; the listener's close path follows.
    }
  }

  /** Send waiting events while the channel takes them. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#pending.length > 0 && this.#canSend()) this.#send(this.#pending.shift()!);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#closed || this.#timer !== undefined || this.#pending.length === 0 || !this.#channel) return;
    this.#timer = setTimeout(() => this.flush(), this.#flushMs);
  }

  /** Drop everything and stop the flush timer. Idempotent. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending = [];
    this.#channel = null;
  }
}
