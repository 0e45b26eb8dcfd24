/**
 * RFC 4733 telephone-events: a DTMF digit is a run of packets sharing one RTP timestamp (the event start);
 * the last three carry the end bit. The detector reports each digit once, on its first end packet, with its
 * duration; an event whose end packets were all lost is reported when the next event starts.
 */
const DIGITS = "0123456789*#ABCD";

export interface TelephoneEvent {
  event: number;
  end: boolean;
  volume: number;
  duration: number;
}

export function parseTelephoneEvent(payload: Uint8Array): TelephoneEvent | null {
  if (payload.length < 4) return null;
  return {
    event: payload[0],
    end: (payload[1] & 0x80) !== 0,
    volume: payload[1] & 0x3f,
    duration: (payload[2] << 8) | payload[3],
  };
}

export function eventDigit(event: number): string | null {
  return event < DIGITS.length ? DIGITS[event] : null;
}

export class DtmfDetector {
  #currentTs: number | null = null;
  #currentEvent = -1;
  #currentDuration = 0;
  #reported = new Set<number>();
  constructor(
    private readonly onDigit: (digit: string, durationMs: number) => void,
    private readonly rate = 8000,
  ) {}

  push(timestamp: number, payload: Uint8Array): void {
    const ev = parseTelephoneEvent(payload);
    if (!ev) return;
    if (this.#currentTs !== timestamp) {
      // A new event: the previous one ended without an end packet reaching us.
      if (this.#currentTs !== null && !this.#reported.has(this.#currentTs)) this.#report(this.#currentTs);
      this.#currentTs = timestamp;
      this.#currentEvent = ev.event;
      this.#currentDuration = 0;
    }
    this.#currentDuration = Math.max(this.#currentDuration, ev.duration);
    if (ev.end && !this.#reported.has(timestamp)) this.#report(timestamp);
  }

  #report(ts: number): void {
    this.#reported.add(ts);
    if (this.#reported.size > 64) this.#reported.delete(this.#reported.values().next().value!);
    const digit = eventDigit(this.#currentEvent);
    if (digit) this.onDigit(digit, Math.round((this.#currentDuration * 1000) / this.rate));
  }
}
