/**
 * Server transactions (RFC 3261 17.2, with RFC 6026's Accepted state for 2xx to INVITE).
 *
 * INVITE: Proceeding (retransmitted INVITEs re-send the last provisional) → on 2xx Accepted (the 2xx is
 * retransmitted on T1 doubling to T2 until the dialog reports the ACK, timer L = 64·T1 gives up) → on 3xx–6xx
 * Completed (timer G retransmits over UDP, timer H = 64·T1 gives up, the ACK moves to Confirmed, timer I ends).
 * Non-INVITE: Trying/Proceeding → Completed (re-send the final response to retransmissions; timer J ends).
 */
import type { SipPeer, SipRequest } from "./sip_types.ts";
import type { SipTimers } from "./timers.ts";

export type ServerTxState = "proceeding" | "accepted" | "completed" | "confirmed" | "terminated";

export interface TxSender {
  send(bytes: Uint8Array, peer: SipPeer): void;
}

export class ServerTransaction {
  state: ServerTxState = "proceeding";
  #last?: Uint8Array;
  #retransmit?: ReturnType<typeof setTimeout>;
  #giveUp?: ReturnType<typeof setTimeout>;
  #closed = false;
  /** Called when the 2xx was never acknowledged (timer L) or a final response never was (timer H). */
  onTimeout?: () => void;
  onTerminated?: () => void;

  constructor(
    readonly key: string,
    readonly request: SipRequest,
    readonly peer: SipPeer,
    private readonly sender: TxSender,
    private readonly timers: SipTimers,
  ) {}

  get isInvite(): boolean {
    return this.request.method === "INVITE";
  }

  get finalSent(): boolean {
    return this.state !== "proceeding";
  }

  /** A retransmission of the request arrived: re-send whatever we last sent. */
  onRetransmission(): void {
    if (this.#last !== undefined && this.state !== "confirmed" && this.state !== "terminated") {
      this.sender.send(this.#last, this.peer);
    }
  }

  respond(status: number, bytes: Uint8Array): void {
    if (this.#closed || this.state !== "proceeding") return;
    this.#last = bytes;
    this.sender.send(bytes, this.peer);
    if (status < 200) return;
    const udp = this.peer.transport === "udp";
    if (!this.isInvite) {
      this.state = "completed";
      this.#giveUp = setTimeout(() => this.#terminate(), udp ? 64 * this.timers.t1 : 0);
      return;
    }
    this.state = status < 300 ? "accepted" : "completed";
    // 2xx is retransmitted on every transport until ACK (13.3.1.4); non-2xx only over UDP (timer G).
    if (status < 300 || udp) this.#scheduleRetransmit(this.timers.t1);
    this.#giveUp = setTimeout(() => {
      this.onTimeout?.();
      this.#terminate();
    }, 64 * this.timers.t1);
  }

  #scheduleRetransmit(interval: number): void {
    this.#retransmit = setTimeout(() => {
      if (this.state !== "accepted" && this.state !== "completed") return;
      if (this.#last) this.sender.send(this.#last, this.peer);
      this.#scheduleRetransmit(Math.min(interval * 2, this.timers.t2));
    }, interval);
  }

  /** The ACK for this INVITE arrived (for a 2xx, the dialog layer matched it). */
  onAck(): void {
    if (this.state === "accepted") {
      // RFC 6026 7.1: stay Accepted until timer L, absorbing late INVITE retransmissions without answering.
      clearTimeout(this.#retransmit);
      this.#last = undefined;
      this.onTimeout = undefined;
    } else if (this.state === "completed") {
      this.state = "confirmed";
      clearTimeout(this.#retransmit);
      clearTimeout(this.#giveUp);
      const udp = this.peer.transport === "udp";
      this.#giveUp = setTimeout(() => this.#terminate(), udp ? this.timers.t4 : 0);
    }
  }

  #terminate(): void {
    if (this.#closed) return;
    this.close();
    this.onTerminated?.();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.state = "terminated";
    clearTimeout(this.#retransmit);
    clearTimeout(this.#giveUp);
  }
}
