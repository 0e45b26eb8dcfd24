/**
 * Non-INVITE client transaction (RFC 3261 17.1.2): the UAS sends BYE and UPDATE with it. Timer E retransmits
 * over UDP (T1 doubling to T2), timer F (64·T1) fails the request. Resolves with the final status code, or 408
 * on timeout; close() settles it as 408 too, so nothing awaits forever.
 */
import type { SipPeer } from "./sip_types.ts";
import type { SipTimers } from "./timers.ts";
import type { TxSender } from "./server_transaction.ts";

export class ClientTransaction {
  readonly done: Promise<number>;
  #resolve!: (status: number) => void;
  #retransmit?: ReturnType<typeof setTimeout>;
  #timeout?: ReturnType<typeof setTimeout>;
  #closed = false;
  onTerminated?: () => void;

  constructor(
    readonly branch: string,
    private readonly bytes: Uint8Array,
    private readonly peer: SipPeer,
    private readonly sender: TxSender,
    private readonly timers: SipTimers,
  ) {
    this.done = new Promise((r) => (this.#resolve = r));
  }

  start(): void {
    this.sender.send(this.bytes, this.peer);
    if (this.peer.transport === "udp") this.#schedule(this.timers.t1);
    this.#timeout = setTimeout(() => this.#finish(408), 64 * this.timers.t1);
  }

  #schedule(interval: number): void {
    this.#retransmit = setTimeout(() => {
      if (this.#closed) return;
      this.sender.send(this.bytes, this.peer);
      this.#schedule(Math.min(interval * 2, this.timers.t2));
    }, interval);
  }

  onResponse(status: number): void {
    if (status < 200) {
      // Proceeding: keep waiting, retransmit at T2 (17.1.2.2).
      clearTimeout(this.#retransmit);
      if (this.peer.transport === "udp") this.#schedule(this.timers.t2);
      return;
    }
    this.#finish(status);
  }

  #finish(status: number): void {
    if (this.#closed) return;
    // Settle with the real status before close(), which settles anything still pending as 408.
    this.#resolve(status);
    this.close();
    this.onTerminated?.();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retransmit);
    clearTimeout(this.#timeout);
    this.#resolve(408);
  }
}
