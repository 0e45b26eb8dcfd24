/**
 * RtpSession and PortAllocator (sockets in the RTP worker) with real UDP sockets on 127.0.0.1: symmetric RTP, echo of decoded audio,
 * media timeout (and none during hold or comfort noise), RTCP BYE, 10k junk datagrams, pacing, and ports
 * that are always released.
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { PortAllocator } from "./port_allocator.ts";
import { RtpWorker } from "./rtp_worker_host.ts";
import { RtpSession } from "./rtp_session.ts";
import { buildRtp, parseRtp } from "./rtp_packet.ts";
import { buildRtcp } from "./rtcp.ts";
import { encodeG711 } from "./g711.ts";
import { PortRangeExhausted } from "./errors.ts";
import { loopbackRtp, rtpRange, udpPeer, waitFor } from "./testdata/harness.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tone(n = 160): Int16Array {
  return Int16Array.from(
    { length: n },
    (_, i) => Math.round(6000 * Math.sin((2 * Math.PI * 440 * i) / 8000)),
  );
}

const range = rtpRange(3);

Deno.test("rtp: symmetric RTP — media goes to where the remote's packets come from, not the SDP port", async () => {
  const worker = new RtpWorker();
  const alloc = new PortAllocator("127.0.0.1", range.rtpPortMin, range.rtpPortMax, worker);
  const p = await udpPeer();
  const frames: Int16Array[] = [];
  // the SDP lies (NAT): nothing listens on port 9
  const rtp = await loopbackRtp(alloc, 9, { payloadType: 0, onAudio: (pcm) => frames.push(pcm) });
  try {
    for (let i = 0; i < 10; i++) {
      const pkt = buildRtp({
        marker: i === 0,
        payloadType: 0,
        sequence: 100 + i,
        timestamp: i * 160,
        ssrc: 77,
        payload: encodeG711(0, tone()),
      });
      p.sock.send(pkt, rtp.port, "127.0.0.1");
      await sleep(5);
    }
    rtp.send(tone(1600));
    await waitFor(() => p.got.length >= 10, 2000);
    assert.equal(rtp.remote.port, p.port);
    assert.equal(frames.length, 10);
    const first = parseRtp(p.got[0])!;
    assert.equal(first.payloadType, 0);
    assert.equal(first.payload.length, 160);
  } finally {
    await rtp.close();
    p.sock.close();
  }
  assert.equal(alloc.leased, 0);
  await worker.close();
});

Deno.test("rtp: media timeout fires when RTP stops, never while held or after comfort noise", async () => {
  const worker = new RtpWorker();
  const alloc = new PortAllocator("127.0.0.1", range.rtpPortMin, range.rtpPortMax, worker);
  const p = await udpPeer();
  const send = (rtp: RtpSession, pt: number, seq: number) =>
    p.sock.send(
      buildRtp({
        marker: false,
        payloadType: pt,
        sequence: seq,
        timestamp: seq * 160,
        ssrc: 5,
        payload: new Uint8Array(pt === 13 ? 1 : 160),
      }),
      rtp.port,
      "127.0.0.1",
    );
  const make = (held: boolean, onTimeout: () => void) =>
    loopbackRtp(alloc, p.port, {
      payloadType: 0,
      direction: held ? "recvonly" : "sendrecv",
      held,
      mediaTimeoutMs: 300,
      onMediaTimeout: onTimeout,
    });
  let timedOut = 0;
  const live = await make(false, () => timedOut++);
  let heldTimeouts = 0;
  const held = await make(true, () => heldTimeouts++);
  let cnTimeouts = 0;
  const cn = await make(false, () => cnTimeouts++);
  try {
    for (let i = 0; i < 5; i++) {
      send(live, 0, i);
      send(cn, 0, i);
    }
    await sleep(50); // node:dgram sends are asynchronous: let the speech packets land before the CN one
    send(cn, 13, 6); // comfort noise: the remote stops sending by agreement
    await sleep(900);
    assert.equal(timedOut, 1, "a silent live call must time out");
    assert.equal(heldTimeouts, 0, "a held call must not time out");
    assert.equal(cnTimeouts, 0, "comfort noise must not count as dead media");
    // Unhold restarts the clock; then silence times out.
    held.update({ direction: "sendrecv", held: false });
    await sleep(700);
    assert.equal(heldTimeouts, 1);
  } finally {
    await Promise.all([live.close(), held.close(), cn.close()]);
    p.sock.close();
  }
  assert.equal(alloc.leased, 0);
  await worker.close();
});

Deno.test("rtp: RTCP BYE is reported; SR/RR are sent; 10k junk datagrams change nothing", async () => {
  const worker = new RtpWorker();
  const alloc = new PortAllocator("127.0.0.1", range.rtpPortMin, range.rtpPortMax, worker);
  const p = await udpPeer();
  const rtcpPeer = await udpPeer();
  let byes = 0;
  let frames = 0;
  let digits = 0;
  let timeouts = 0;
  const rtp = await loopbackRtp(alloc, p.port, {
    dtmfPayloadType: 101,
    rtcpIntervalMs: 200,
    mediaTimeoutMs: 5000,
    onRtcpBye: () => byes++,
    onAudio: () => frames++,
    onDtmf: () => digits++,
    onMediaTimeout: () => timeouts++,
  });
  try {
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let i = 0; i < 10_000; i++) {
      const junk = Uint8Array.from({ length: 1 + Math.floor(rnd() * 300) }, () => Math.floor(rnd() * 256));
      // Every fourth datagram looks like RTP v2 with a payload type we did not negotiate.
      if (i % 4 === 0 && junk.length >= 12) {
        junk[0] = 0x80;
        junk[1] = 96 + (i % 5);
      }
      p.sock.send(junk, i % 2 ? rtp.port : rtp.port + 1, "127.0.0.1");
      if (i % 20 === 0) await sleep(1);
    }
    await sleep(300);
    assert.equal(byes, 0);
    assert.equal(frames, 0);
    assert.equal(digits, 0);
    assert.equal(timeouts, 0);
    assert.ok(rtp.stats.junk > 9000, `junk counted ${rtp.stats.junk}`);
    assert.equal(rtp.remote.port, p.port, "junk must not move the latched remote");
    assert.ok(rtp.stats.rtcpOut >= 1, "no RTCP report sent");
    // A BYE from another address (127.0.0.2 is loopback too) is not the caller's: ignored.
    const stranger = dgram.createSocket("udp4");
    await new Promise<void>((res) => stranger.bind(0, "127.0.0.2", res));
    stranger.send(buildRtcp({ ssrc: 9, cname: "x", bye: true }), rtp.port + 1, "127.0.0.1");
    await waitFor(() => rtp.stats.ignoredByes === 1, 1000);
    stranger.close();
    // Once the caller's RTP was seen, a BYE naming another SSRC is not the caller's either.
    p.sock.send(
      buildRtp({
        marker: true,
        payloadType: 8,
        sequence: 1,
        timestamp: 160,
        ssrc: 9,
        payload: new Uint8Array(160),
      }),
      rtp.port,
      "127.0.0.1",
    );
    await waitFor(() => frames + rtp.stats.packetsIn > 0, 1000);
    rtcpPeer.sock.send(buildRtcp({ ssrc: 10, cname: "phone", bye: true }), rtp.port + 1, "127.0.0.1");
    await waitFor(() => rtp.stats.ignoredByes === 2, 1000);
    assert.equal(byes, 0);
    rtcpPeer.sock.send(buildRtcp({ ssrc: 9, cname: "phone", bye: true }), rtp.port + 1, "127.0.0.1");
    await waitFor(() => byes === 1, 1000);
  } finally {
    await rtp.close();
    p.sock.close();
    rtcpPeer.sock.close();
  }
  assert.equal(alloc.leased, 0);
  await worker.close();
});

Deno.test("port allocator: exhaustion is an error, release is idempotent, foreign-held ports are skipped", async () => {
  const min = range.rtpPortMin + 200;
  const blocker = dgram.createSocket("udp4");
  await new Promise<void>((r) => blocker.bind(min, "127.0.0.1", () => r()));
  const worker = new RtpWorker();
  const alloc = new PortAllocator("127.0.0.1", min, min + 5, worker);
  const a = await alloc.allocate();
  const b = await alloc.allocate();
  assert.deepEqual([a.port, b.port], [min + 2, min + 4]);
  await assert.rejects(() => alloc.allocate(), PortRangeExhausted);
  await a.release();
  await a.release();
  assert.equal(alloc.leased, 1);
  const c = await alloc.allocate();
  assert.equal(c.port, min + 2);
  await Promise.all([b.release(), c.release()]);
  assert.equal(alloc.leased, 0);
  blocker.close();
  await worker.close();
});
