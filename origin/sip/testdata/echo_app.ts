/**
 * Loopback test application: answers every call (optionally after ringing, or never), echoes the caller's
 * audio back and records what happened, so tests can assert on digits, hold changes and end reasons.
 */
import type { Call } from "../call.ts";
import type { CallEndReason, SipApplication } from "../sip_types.ts";

export interface CallRecord {
  call: Call;
  digits: string[];
  holds: boolean[];
  framesIn: number;
  energyIn: number;
  endReason?: CallEndReason;
}

export class EchoApp implements SipApplication {
  readonly records: CallRecord[] = [];
  constructor(private readonly mode: "answer" | "ring-only" = "answer") {}

  async onCall(call: Call): Promise<void> {
    const rec: CallRecord = { call, digits: [], holds: [], framesIn: 0, energyIn: 0 };
    this.records.push(rec);
    call.ring();
    if (this.mode === "ring-only") return;
    await call.accept({
      onAudio: (pcm) => {
        rec.framesIn++;
        let e = 0;
        for (const s of pcm) e += s * s;
        rec.energyIn += e / pcm.length;
        call.send(pcm);
      },
      onDtmf: (d) => rec.digits.push(d),
      onHold: (h) => rec.holds.push(h),
      onEnd: (r) => {
        rec.endReason = r;
      },
    });
  }
}
