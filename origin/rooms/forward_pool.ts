/**
 * The origin's room forward workers (forward_worker_host.ts), shared by every `shared` room: a new listener
 * goes to the worker with the fewest listeners, so a room's listeners spread over all of them and each
 * worker's sends are a fraction of the room's. Workers start on first use. `close()` closes each (their
 * listeners first); idempotent.
 */
import type { Logger } from "../../lib/log.ts";
import { ForwardWorker, type ForwardWorkerOptions } from "./forward_worker_host.ts";

export interface ForwardPoolOptions extends Omit<ForwardWorkerOptions, "index" | "spawn"> {
  /** Workers at most (≥ 1). */
  workers: number;
  log?: Logger;
  /** Starts worker `index` (a test keeps the handles to kill them). */
  spawn?: (index: number) => Worker;
}

export class ForwardPool {
  readonly workers: readonly ForwardWorker[];
  #closing: Promise<void> | undefined;

  constructor(o: ForwardPoolOptions) {
    if (!(o.workers >= 1)) throw new Error("a forward pool needs at least one worker");
    this.workers = Array.from({ length: o.workers }, (_, index) => {
      const spawn = o.spawn;
      return new ForwardWorker({ ...o, index, spawn: spawn && (() => spawn(index)) });
    });
  }

  /** The worker for the next listener: the least loaded (the first on a tie). */
  pick(): ForwardWorker {
    let best = this.workers[0];
    for (const w of this.workers) if (w.load < best.load) best = w;
    return best;
  }

  /** Peers still open and peers with timers pending, over every worker (leak checks). */
  async count(): Promise<{ peers: number; timers: number }> {
    const all = await Promise.all(this.workers.map((w) => w.count()));
    return all.reduce((a, b) => ({ peers: a.peers + b.peers, timers: a.timers + b.timers }), {
      peers: 0,
      timers: 0,
    });
  }

  close(): Promise<void> {
    return this.#closing ??= Promise.all(this.workers.map((w) => w.close())).then(() => {});
  }
}
