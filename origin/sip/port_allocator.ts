/**
 * RTP/RTCP port pairs from a configured range (even RTP port, RTCP on the next odd one). The sockets live in
 * the RTP worker (rtp_worker_host.ts): allocating binds both there, and `release()` (idempotent) returns the
 * pair to the pool only after the worker closed both sockets, so a released port can be bound again at once.
 * A pair bound in a worker that died is free as soon as it is released (its sockets died with the worker).
 * Ports that another process holds are skipped. The allocator tracks its live leases so a leak test can
 * assert zero.
 */
import { PortRangeExhausted } from "./errors.ts";
import type { RtpWorker } from "./rtp_worker_host.ts";

export interface PortLease {
  readonly port: number;
  /** The worker that holds the sockets, and the incarnation they were bound in. */
  readonly worker: RtpWorker;
  readonly generation: number;
  release(): Promise<void>;
}

export class PortAllocator {
  readonly #inUse = new Set<number>();
  #cursor: number;
  constructor(
    readonly host: string,
    readonly min: number,
    readonly max: number,
    readonly worker: RtpWorker,
  ) {
    if (min % 2 !== 0) this.min = min + 1;
    if (this.max <= this.min) throw new RangeError("port range needs at least one even/odd pair");
    this.#cursor = this.min;
  }

  get leased(): number {
    return this.#inUse.size;
  }

  async allocate(): Promise<PortLease> {
    const pairs = Math.floor((this.max - this.min + 1) / 2);
    for (let i = 0; i < pairs; i++) {
      const port = this.#cursor;
      this.#cursor = this.#cursor + 2 > this.max - 1 ? this.min : this.#cursor + 2;
      if (this.#inUse.has(port)) continue;
      this.#inUse.add(port);
      let generation: number | null;
      try {
        generation = await this.worker.bind(this.host, port);
      } catch (e) {
        this.#inUse.delete(port);
        throw e;
      }
      if (generation === null) {
        this.#inUse.delete(port);
        continue;
      }
      let released: Promise<void> | undefined;
      const worker = this.worker;
      return {
        port,
        worker,
        generation,
        release: () =>
          released ??= worker.unbind(port, generation).finally(() => {
            this.#inUse.delete(port);
          }),
      };
    }
    throw new PortRangeExhausted(`no free RTP port pair in ${this.min}-${this.max}`);
  }
}
