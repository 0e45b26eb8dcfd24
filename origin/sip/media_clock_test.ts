/**
 * The shared RTP media clock: drift-free 20 ms passes, every member sends before any prepares, bounded catch-up
 * after a late pass, skipped ticks reported after a long stall, no timer while empty, idempotent close; and an
 * RTP endpoint on it keeps its RTP timestamps on wall-clock time across a stall.
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { MediaClock, type MediaClockMember } from "./media_clock.ts";
import { RtpEndpoint } from "./rtp_endpoint.ts";
import { RtpMetricsBatcher } from "./rtp_metrics_batcher.ts";
import { parseRtp } from "./rtp_packet.ts";
import { waitFor } from "./testdata/harness.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const busy = (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* holds the event loop, as a long task would */ }
};

/** Sends in the same macrotask (one clock pass) share a turn number. */
let turn = 0;
let turnEnding = false;

class Recorder implements MediaClockMember {
  readonly sends: Array<{ at: number; skipped: number; turn: number }> = [];
  constructor(private readonly trace: string[], private readonly name: string) {}
  sendTick(skipped: number): void {
    this.sends.push({ at: performance.now(), skipped, turn });
    if (!turnEnding) {
      turnEnding = true;
      queueMicrotask(() => {
        turn++;
        turnEnding = false;
      });
    }
    this.trace.push(`send ${this.name}`);
  }
  prepareNext(): void {
    this.trace.push(`prepare ${this.name}`);
  }
}

Deno.test("media clock: 20 ms passes without drift; each pass sends every member before any prepares", async () => {
  const clock = new MediaClock();
  const trace: string[] = [];
  const a = new Recorder(trace, "a");
  const b = new Recorder(trace, "b");
  const t0 = performance.now();
  clock.add(a);
  clock.add(b);
  try {
    await sleep(1010);
  } finally {
    clock.close();
  }
  const n = a.sends.length;
  assert.ok(n >= 45 && n <= 51, `${n} ticks in 1 s`);
  assert.equal(b.sends.length, n);
  // Tick k is due at t0 + 20·k: the lateness of the last one is bounded, not accumulated.
  const lateness = a.sends[n - 1].at - (t0 + 20 * n);
  assert.ok(lateness < 20, `drifted ${lateness} ms`);
  assert.deepEqual(trace.slice(0, 8), [
    "send a",
    "send b",
    "prepare a",
    "prepare b",
    "send a",
    "send b",
    "prepare a",
    "prepare b",
  ]);
});

Deno.test("media clock: a late pass catches up at most two ticks; a long stall skips ticks and says how many", async () => {
  const clock = new MediaClock();
  const trace: string[] = [];
  const m = new Recorder(trace, "m");
  clock.add(m);
  try {
    await waitFor(() => m.sends.length >= 2, 2000);
    // Three periods late, within the backlog: nothing skipped, never more than two sends in one pass.
    busy(65);
    const before = m.sends.length;
    await waitFor(() => m.sends.length >= before + 5, 2000);
    assert.ok(m.sends.slice(before).every((s) => s.skipped === 0));
    const perPass = new Map<number, number>();
    for (const s of m.sends.slice(before)) perPass.set(s.turn, (perPass.get(s.turn) ?? 0) + 1);
    assert.ok(Math.max(...perPass.values()) === 2, `sends per pass: ${[...perPass.values()]}`);
    // Far beyond the backlog: one send, told how many ticks were skipped; the schedule stays on time after.
    busy(300);
    await waitFor(() => m.sends.some((s) => s.skipped > 0), 2000);
    const skip = m.sends.find((s) => s.skipped > 0)!;
    assert.ok(skip.skipped >= 10 && skip.skipped <= 40, `skipped ${skip.skipped}`);
    assert.equal(clock.skipped, skip.skipped);
  } finally {
    clock.close();
  }
});

Deno.test("media clock: no timer without members; close is idempotent and ends ticking", async () => {
  const clock = new MediaClock();
  const trace: string[] = [];
  const m = new Recorder(trace, "m");
  assert.equal(clock.running, false);
  clock.add(m);
  assert.equal(clock.running, true);
  clock.remove(m);
  assert.equal(clock.running, false);
  clock.add(m);
  await waitFor(() => m.sends.length > 0, 1000);
  clock.close();
  clock.close();
  assert.equal(clock.running, false);
  assert.equal(clock.size, 0);
  const n = m.sends.length;
  clock.add(m); // closed: never ticked again
  await sleep(60);
  assert.equal(m.sends.length, n);
  assert.equal(clock.running, false);
});

Deno.test("media clock: an RTP endpoint keeps RTP timestamps on wall-clock time across a stall", async () => {
  const sockets = { rtp: dgram.createSocket("udp4"), rtcp: dgram.createSocket("udp4") };
  await Promise.all(
    [sockets.rtp, sockets.rtcp].map((s) => new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()))),
  );
  const sock = dgram.createSocket("udp4");
  const got: Uint8Array[] = [];
  sock.on("message", (b) => got.push(new Uint8Array(b)));
  await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
  const gaps: number[] = [];
  const lateness: number[] = [];
  // The endpoint runs on this thread's clock here, as it does on the RTP worker's.
  const clock = new MediaClock({
    afterPass: () => {
      const r = ep.takeReport();
      gaps.push(...r?.gaps ?? []);
      lateness.push(...r?.lateness ?? []);
    },
  });
  const ep = new RtpEndpoint(
    {
      port: sockets.rtp.address().port,
      payloadType: 8,
      remoteAddress: "127.0.0.1",
      remotePort: sock.address().port,
      direction: "sendrecv",
      held: false,
      mediaTimeoutMs: 0,
      rtcpIntervalMs: 5000,
      cname: "test",
      recordPacing: true,
      queuePackets: 3,
    },
    sockets,
    new RtpMetricsBatcher(),
  );
  clock.add(ep);
  try {
    await waitFor(() => got.length >= 3, 2000);
    busy(300);
    await waitFor(() => clock.skipped > 0 && got.length >= 8, 2000);
    const pkts = got.map((b) => parseRtp(b)!);
    for (let i = 1; i < pkts.length; i++) {
      const seqStep = (pkts[i].sequence - pkts[i - 1].sequence + 65536) % 65536;
      assert.equal(seqStep, 1, "sequence numbers stay contiguous");
    }
    const span = (pkts[pkts.length - 1].timestamp - pkts[0].timestamp + 2 ** 32) % 2 ** 32;
    // Every tick, sent or skipped, advances the timestamp by one packet (160 samples).
    assert.equal(span, 160 * (pkts.length - 1 + clock.skipped));
    assert.ok(gaps.length >= pkts.length - 2);
    // Lateness counts the skipped ticks as elapsed: after the stall the packets are back on the grid.
    const late = lateness.at(-1)!;
    assert.ok(late < 100, `lateness after the stall ${late} ms`);
  } finally {
    clock.remove(ep);
    assert.ok(ep.close()?.stats, "the first close hands over the final figures");
    assert.equal(ep.close(), undefined, "close is idempotent");
    for (const s of [sock, sockets.rtp, sockets.rtcp]) s.close();
  }
  assert.equal(clock.size, 0);
  assert.equal(clock.running, false);
  clock.close();
});
