/**
 * The RTP worker (rtp_worker_host.ts ↔ rtp_worker.ts) with real sockets on 127.0.0.1: a message round trip
 * (RTP in → decoded audio and a DTMF digit on main; main's audio → prepared packets → RTP out, with the
 * pacing samples, stats and metrics carried back), audio pulled on the worker's clock (`onNeedAudio`),
 * idempotent closes, a killed worker (its calls are told, their ports come free, the next call gets a fresh
 * worker), a call that ends with `media_error` when its worker dies, and the precise clock's pacing.
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { PortAllocator } from "./port_allocator.ts";
import { RtpWorker } from "./rtp_worker_host.ts";
import { RtpSession } from "./rtp_session.ts";
import { buildRtp, parseRtp } from "./rtp_packet.ts";
import { decodeG711, encodeG711 } from "./g711.ts";
import { MediaClock, type MediaClockMember } from "./media_clock.ts";
import { RtpWorkerLost } from "./errors.ts";
import { rtpMetrics } from "./sip_metrics.ts";
import { EchoApp } from "./testdata/echo_app.ts";
import {
  loopbackRtp,
  rtpRange,
  runSipp,
  startUas,
  trackedRtpWorker,
  udpPeer,
  waitFor,
} from "./testdata/harness.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const range = rtpRange(7);

function tone(n: number, amp = 6000): Int16Array {
  return Int16Array.from({ length: n }, (_, i) => Math.round(amp * Math.sin((2 * Math.PI * 440 * i) / 8000)));
}

function rtpTo(p: { sock: dgram.Socket }, port: number, pt: number, seq: number, payload: Uint8Array): void {
  p.sock.send(
    buildRtp({ marker: seq === 0, payloadType: pt, sequence: seq, timestamp: seq * 160, ssrc: 42, payload }),
    port,
    "127.0.0.1",
  );
}

/** The port can be bound by this isolate: nothing (in the worker or elsewhere) holds it. */
async function bindable(port: number): Promise<boolean> {
  const s = dgram.createSocket("udp4");
  const ok = await new Promise<boolean>((res) => {
    s.once("error", () => res(false));
    s.bind(port, "127.0.0.1", () => res(true));
  });
  await new Promise<void>((res) => {
    try {
      s.close(() => res());
    } catch {
      res();
    }
  });
  return ok;
}

Deno.test("rtp worker: round trip — audio and DTMF in, prepared audio out, figures back, ports free after close", async () => {
  const worker = new RtpWorker();
  const alloc = new PortAllocator("127.0.0.1", range.rtpPortMin, range.rtpPortMax, worker);
  const p = await udpPeer();
  const frames: Int16Array[] = [];
  const digits: string[] = [];
  const out0 = rtpMetrics.packetsOut.get();
  const direct0 = rtpMetrics.directSends.get();
  const lease = await alloc.allocate();
  const rtp = new RtpSession({
    lease,
    payloadType: 0,
    dtmfPayloadType: 101,
    remoteAddress: "127.0.0.1",
    remotePort: p.port,
    direction: "sendrecv",
    held: false,
    recordPacing: 1000,
    onAudio: (pcm) => frames.push(pcm),
    onDtmf: (d) => digits.push(d),
  });
  try {
    const sent = tone(160);
    for (let i = 0; i < 5; i++) rtpTo(p, rtp.port, 0, i, encodeG711(0, sent));
    // RFC 4733 digit 5: three packets of one event, the last with the end bit.
    for (const [k, end] of [[0, false], [1, false], [2, true]] as const) {
      const ev = new Uint8Array([5, end ? 0x80 | 10 : 10, 0, 160 * (k + 1)]);
      p.sock.send(
        buildRtp({
          marker: k === 0,
          payloadType: 101,
          sequence: 5 + k,
          timestamp: 800,
          ssrc: 42,
          payload: ev,
        }),
        rtp.port,
        "127.0.0.1",
      );
    }
    await waitFor(() => frames.length >= 5 && digits.length === 1, 3000);
    assert.deepEqual(digits, ["5"]);
    assert.deepEqual(
      [...frames[0]],
      [...decodeG711(0, encodeG711(0, sent))],
      "decoded in the worker, intact",
    );
    // Main's audio goes out in order, as prepared G.711 payloads, after silence while nothing was queued.
    const speech = tone(1600, 9000);
    rtp.send(speech);
    await waitFor(() => p.got.some((b) => parseRtp(b)!.payload.some((x) => x !== 0xff)), 3000);
    await waitFor(() => rtp.pendingSamples === 0, 3000);
    await sleep(120);
    const pkts = p.got.map((b) => parseRtp(b)!);
    const voiced = pkts.filter((x) => x.payload.some((v) => v !== 0xff));
    assert.equal(voiced.length, 10, "every prepared packet was sent once");
    const expected = encodeG711(0, speech);
    for (let i = 0; i < 10; i++) {
      assert.deepEqual(voiced[i].payload, expected.subarray(i * 160, (i + 1) * 160));
    }
    await waitFor(() => rtp.stats.packetsIn >= 5 && rtp.stats.packetsOut >= pkts.length - 1, 2000);
    assert.equal(rtp.remote.port, p.port);
    assert.deepEqual([...p.fromPorts], [lease.port], "every packet left from the call's own RTP port");
  } finally {
    await Promise.all([rtp.close(), rtp.close()]);
    p.sock.close();
  }
  assert.ok(rtp.stats.packetsOut >= 10);
  assert.ok(rtp.gaps.length >= rtp.stats.packetsOut - 2, `${rtp.gaps.length} gaps`);
  assert.ok(rtp.gaps.every((g) => g > 0 && g < 1000));
  assert.equal(alloc.leased, 0);
  assert.ok(await bindable(lease.port), "the RTP port is closed in the worker before the lease is released");
  assert.ok(await bindable(lease.port + 1), "and the RTCP port");
  assert.ok(rtpMetrics.packetsOut.get() - out0 >= rtp.stats.packetsOut, "the worker's counts reach /metrics");
  assert.equal(
    rtpMetrics.directSends.get() - direct0,
    rtpMetrics.packetsOut.get() - out0,
    "every packet went out with sendto(2) on the RTP socket's descriptor",
  );
  await worker.close();
  await worker.close();
  await assert.rejects(() => alloc.allocate(), RtpWorkerLost);
});

Deno.test("rtp worker: the send clock pulls the application's audio (onNeedAudio), a few packets ahead", async () => {
  const worker = new RtpWorker();
  const alloc = new PortAllocator("127.0.0.1", range.rtpPortMin, range.rtpPortMax, worker);
  const p = await udpPeer();
  let pulls = 0;
  let rtp: RtpSession | undefined = undefined;
  rtp = await loopbackRtp(alloc, p.port, {
    queuePackets: 3,
    onNeedAudio: () => {
      pulls++;
      rtp!.send(tone(80, 8000)); // half a packet per pull, like two 10 ms playout frames' halves
    },
  });
  try {
    await waitFor(() => p.got.length >= 25, 3000);
    assert.ok(pulls >= 2 * 20, `${pulls} pulls for ${p.got.length} packets`);
    // Pulled just in time: main never holds more than a packet's worth, the worker at most its queue.
    assert.ok(rtp.pendingSamples < 160, `${rtp.pendingSamples} samples waiting on main`);
    assert.ok(pulls <= 2 * (p.got.length + 3) + 2, `${pulls} pulls for ${p.got.length} packets: ran ahead`);
    const voiced = p.got.map((b) => parseRtp(b)!).filter((x) => x.payload.some((v) => v !== 0xd5));
    assert.ok(voiced.length >= p.got.length - 2, "after the first packet every one carries pulled audio");
  } finally {
    await rtp.close();
    p.sock.close();
    await worker.close();
  }
  assert.equal(alloc.leased, 0);
});

Deno.test("rtp worker: a killed worker — its calls are told, their ports come free, the next call gets a fresh one", async () => {
  const { worker, spawned } = trackedRtpWorker(400);
  const alloc = new PortAllocator("127.0.0.1", range.rtpPortMin, range.rtpPortMax, worker);
  const p = await udpPeer();
  const failures: string[] = [];
  const open = () => loopbackRtp(alloc, p.port, { onMediaFailure: (why) => failures.push(why) });
  const a = await open();
  const b = await open();
  try {
    await waitFor(() => p.got.length >= 10, 3000);
    const gen = worker.generation;
    spawned[0].terminate(); // behind the host's back, as a crash or a hang would look
    await waitFor(() => failures.length === 2, 5000);
    assert.match(failures[0], /unresponsive/);
    assert.equal(worker.failures, 1);
    assert.equal(worker.generation, gen + 1);
    // Closing a call whose worker died is quick and frees its ports.
    await Promise.all([a.close(), b.close()]);
    assert.equal(alloc.leased, 0);
    await waitFor(() => true);
    for (const port of [a.port, a.port + 1, b.port, b.port + 1]) {
      let free = false;
      for (let i = 0; i < 50 && !free; i++) {
        free = await bindable(port);
        if (!free) await sleep(20);
      }
      assert.ok(free, `port ${port} still bound after the worker died`);
    }
    // The next call starts a fresh worker and has media again.
    const n = p.got.length;
    const c = await open();
    assert.equal(spawned.length, 2);
    await waitFor(() => p.got.length >= n + 5, 3000);
    await c.close();
    assert.equal(failures.length, 2);
  } finally {
    await Promise.all([a.close(), b.close()]);
    p.sock.close();
    await worker.close();
  }
  assert.equal(alloc.leased, 0);
});

Deno.test("rtp worker: a call whose RTP worker dies ends with media_error, BYEs the caller, releases its ports", async () => {
  const { worker: rtpWorker, spawned } = trackedRtpWorker(400);
  const app = new EchoApp();
  const uas = await startUas(app, { rtpWorker, ...rtpRange(8) });
  try {
    const sipp = runSipp("uac_wait_bye.xml", uas.localPort);
    await waitFor(() => app.records.length === 1 && app.records[0].call.rtp !== undefined, 10_000);
    await waitFor(() => app.records[0].call.rtp!.stats.packetsOut > 5, 5000);
    spawned[0].terminate();
    await waitFor(() => app.records[0].endReason !== undefined, 5000);
    assert.equal(app.records[0].endReason, "media_error");
    assert.equal((await sipp).code, 0, "the caller got our BYE");
    await waitFor(() => uas.ports.leased === 0, 3000);
  } finally {
    await uas.close();
    await rtpWorker.close();
  }
});

Deno.test("rtp worker: the precise clock never sends early and keeps 20 ms passes (load-tolerant)", async () => {
  const sends: number[] = [];
  const member: MediaClockMember = {
    sendTick: () => void sends.push(performance.now()),
    prepareNext: () => {},
  };
  const clock = new MediaClock({ precise: true });
  const t0 = performance.now();
  clock.add(member);
  try {
    await sleep(1000);
  } finally {
    clock.close();
  }
  assert.ok(sends.length >= 40 && sends.length <= 51, `${sends.length} passes in 1 s`);
  // Tick k is due at t0 + 20·k: a precise pass waits for its instant, it is never early.
  sends.forEach((at, i) =>
    assert.ok(at >= t0 + 20 * (i + 1) - 0.01, `pass ${i + 1} early by ${t0 + 20 * (i + 1) - at} ms`)
  );
  const gaps = sends.slice(1).map((t, i) => t - sends[i]).sort((a, b) => a - b);
  const p50 = gaps[gaps.length >> 1];
  assert.ok(p50 > 19 && p50 < 21, `gap p50 ${p50} ms`);
});
