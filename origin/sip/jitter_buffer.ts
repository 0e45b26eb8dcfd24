/**
 * A small reordering jitter buffer keyed on the 16-bit RTP sequence number, extended across wrap-around.
 * Packets come out in sequence order: immediately when the next expected one arrives, or, when one is
 * missing, once `depth` later packets are waiting (the gap is skipped). Packets older than the last one
 * released and duplicates are dropped and counted.
 */
import type { RtpPacket } from "./rtp_packet.ts";

export class JitterBuffer {
  readonly #waiting = new Map<number, RtpPacket>();
  #next: number | null = null;
  #highest = -1;
  late = 0;
  duplicates = 0;
  lost = 0;

  constructor(private readonly depth = 3) {}

  /** Extends a 16-bit sequence to the nearest value around the highest seen. */
  #extend(seq: number): number {
    if (this.#highest < 0) return seq + 65536;
    const base = this.#highest - (this.#highest & 0xffff);
    let ext = base + seq;
    if (ext - this.#highest > 32768) ext -= 65536;
    else if (this.#highest - ext > 32768) ext += 65536;
    return ext;
  }

  push(p: RtpPacket): RtpPacket[] {
    const ext = this.#extend(p.sequence);
    if (this.#next === null) this.#next = ext;
    if (ext < this.#next) {
      this.late++;
      return [];
    }
    if (this.#waiting.has(ext)) {
      this.duplicates++;
      return [];
    }
    this.#waiting.set(ext, p);
    if (ext > this.#highest) this.#highest = ext;
    return this.#release(false);
  }

  /** Releases everything waiting (end of stream, or a playout tick that cannot wait longer). */
  drain(): RtpPacket[] {
    return this.#release(true);
  }

  #release(all: boolean): RtpPacket[] {
    const out: RtpPacket[] = [];
    while (this.#waiting.size > 0 && this.#next !== null) {
      const p = this.#waiting.get(this.#next);
      if (p) {
        this.#waiting.delete(this.#next);
        out.push(p);
        this.#next++;
        continue;
      }
      if (!all && this.#waiting.size < this.depth) break;
      // Skip the gap to the oldest waiting packet.
      const oldest = Math.min(...this.#waiting.keys());
      this.lost += oldest - this.#next;
      this.#next = oldest;
    }
    return out;
  }
}
