/**
 * RTP/RTCP port pairs from a configured range (even RTP port, RTCP on the next odd one). A lease owns both
 * bound UDP sockets; `release()` is idempotent and closes them and returns the pair to the pool. Ports that
 * another process holds are skipped. The allocator tracks its live leases so a leak test can assert zero.
 */
import dgram from "node:dgram";
import { PortRangeExhausted } from "./errors.ts";

export interface PortLease {
  readonly port: number;
  readonly rtp: dgram.Socket;
  readonly rtcp: dgram.Socket;
  release(): Promise<void>;
}

export class PortAllocator {
  readonly #inUse = new Set<number>();
  #cursor: number;
  constructor(readonly host: string, readonly min: number, readonly max: number) {
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
      const rtp = await bind(this.host, port);
      const rtcp = rtp ? await bind(this.host, port + 1) : null;
      if (!rtp || !rtcp) {
        if (rtp) await closeSocket(rtp);
        this.#inUse.delete(port);
        continue;
      }
      let released = false;
      return {
        port,
        rtp,
        rtcp,
        release: async () => {
          if (released) return;
          released = true;
          await Promise.all([closeSocket(rtp), closeSocket(rtcp)]);
          this.#inUse.delete(port);
        },
      };
    }
    throw new PortRangeExhausted(`no free RTP port pair in ${this.min}-${this.max}`);
  }
}

function bind(host: string, port: number): Promise<dgram.Socket | null> {
  return new Promise((resolve) => {
    const s = dgram.createSocket("udp4");
    s.once("error", () => {
      try {
        s.close();
      } catch { /* already closed */ }
      resolve(null);
    });
    s.bind(port, host, () => {
      s.removeAllListeners("error");
      s.on("error", () => {});
      resolve(s);
    });
  });
}

function closeSocket(s: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      s.close(() => resolve());
    } catch {
      resolve();
    }
  });
}
