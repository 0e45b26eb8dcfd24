/**
 * The main isolate's half of a `shared` room's listener whose peer runs in a room forward worker
 * (forward_worker_host.ts): to the room and its controller it is a listener and a PacketSink like
 * ForwardListener, but `pushPacket` and `send` only queue the packet or event for the worker (batched per
 * tick), and its state follows the worker's reports. The worker's ForwardListener owns the peer, the events
 * channel and every timer (connect timeout, ICE grace, liveness); this half owns nothing that needs releasing
 * but its place in the worker.
 *
 * `close(reason)` runs once: the state is `closed` at once (no packet or event is queued from then on), the
 * worker is told to close the peer, and the room's `onClosed` runs. A listener the worker closes (client gone,
 * ICE, slow consumer) or loses (`error`) closes the same way with the worker's reason. Send statistics arrive
 * with the worker's reports (every STATS_EVERY_MS) and stop at close.
 */
import { ApiError } from "../../lib/errors.ts";
import type { ListenerEvent, ListenerSource } from "../../protocol/room_messages.ts";
import type { ForwardWorker, ForwardWorkerClient } from "./forward_worker_host.ts";
import type { ForwardListenerStats } from "./forward_worker_types.ts";
import type { ListenerCoreInit } from "./listener_core.ts";
import type { ListenerCloseReason, ListenerState, PacketSink, RoomListener } from "./room_types.ts";

export interface RemoteForwardListenerInit extends ListenerCoreInit {
  worker: ForwardWorker;
}

export class RemoteForwardListener implements RoomListener, PacketSink, ForwardWorkerClient {
  readonly kind = "packets" as const;
  readonly id: string;
  readonly roomId: string;
  readonly gapsMs: number[] | undefined;
  selected: ListenerSource;
  frames = 0;
  maxGapMs = 0;
  onDataMs = 0;
  onDataMaxMs = 0;
  readonly #init: RemoteForwardListenerInit;
  readonly #worker: ForwardWorker;
  #slot = 0;
  #state: ListenerState = "new";
  #reason: ListenerCloseReason | null = null;

  constructor(init: RemoteForwardListenerInit) {
    this.#init = init;
    this.#worker = init.worker;
    this.id = init.id;
    this.roomId = init.roomId;
    this.selected = init.selected;
    this.gapsMs = init.recordGaps ? [] : undefined;
  }

  get state(): ListenerState {
    return this.#state;
  }
  get reason(): ListenerCloseReason | null {
    return this.#reason;
  }
  get trackState(): "live" | "ended" {
    return this.#state === "closed" ? "ended" : "live";
  }
  /** The peer's state as the worker reported it: the same steps as the listener's. */
  get peerState(): string {
    return this.#state;
  }
  /** Timers live with the peer in the worker (ForwardWorker.count() checks them); none here. */
  get timersPending(): boolean {
    return false;
  }
  /** Which worker carries the peer (placement, tests). */
  get workerIndex(): number {
    return this.#worker.index;
  }

  /** Negotiate in the worker. Rejects with the worker's ApiError (400 for a bad offer); the listener closes. */
  async start(offerSdp: string): Promise<string> {
    if (this.#state !== "new") throw new Error(`listener ${this.id} already started or closed`);
    this.#state = "connecting";
    const i = this.#init;
    const spec = {
      id: i.id,
      roomId: i.roomId,
      selected: i.selected,
      config: i.config ?? {},
      recordGaps: !!i.recordGaps,
    };
    try {
      const { slot, sdp } = await this.#worker.start(spec, offerSdp, this);
      this.#slot = slot;
      // close() may have run while the worker negotiated.
      if ((this.#state as ListenerState) === "closed") {
        this.#worker.closeListener(slot, this.#reason ?? "removed");
        throw new ApiError(409, "conflict", "listener closed during setup");
      }
      return sdp;
    } catch (err) {
      this.#end("error");
      throw err;
    }
  }

  /** PacketSink: queued for the worker, which stamps and sends it. */
  pushPacket(payload: Uint8Array, at?: number): void {
    if (this.#state === "connected") this.#worker.packet(this.#slot, payload, at);
  }

  send(ev: ListenerEvent): void {
    if (this.#state === "closed") return;
    // Before the answer the slot is not known yet; the room sends its first event after start() resolved.
    if (this.#slot) this.#worker.event(this.#slot, ev);
  }

  close(reason: ListenerCloseReason = "removed"): void {
    if (this.#state === "closed") return;
    if (this.#slot) this.#worker.closeListener(this.#slot, reason);
    this.#end(reason);
  }

  #end(reason: ListenerCloseReason): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#reason = reason;
    try {
      this.#init.onClosed?.(this, reason);
    } catch (err) {
      this.#init.log?.warn("onClosed callback failed", { err });
    }
  }

  // ForwardWorkerClient: the worker's reports.

  onConnected(): void {
    if (this.#state !== "connecting") return;
    this.#state = "connected";
    this.#init.onConnected?.(this);
  }

  onSelect(source: ListenerSource): void {
    if (this.#state !== "closed") this.#init.onSelect?.(this, source);
  }

  onClosed(reason: ListenerCloseReason): void {
    this.#end(reason);
  }

  onStats(s: ForwardListenerStats): void {
    if (this.#state === "closed") return;
    this.frames += s.frames;
    this.onDataMs += s.onDataMs;
    if (s.maxGapMs > this.maxGapMs) this.maxGapMs = s.maxGapMs;
    if (s.onDataMaxMs > this.onDataMaxMs) this.onDataMaxMs = s.onDataMaxMs;
    if (this.gapsMs && s.gapsMs) { for (const g of s.gapsMs) this.gapsMs.push(g); }
  }

  onWorkerLost(): void {
    this.#end("error");
  }
}
