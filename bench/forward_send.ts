/**
 * Where a `shared` room listener's per-packet CPU goes on the origin: N werift server peers (as
 * ForwardListener makes them) connected to werift clients, then the clients closed (so their receive work
 * is not counted) and the same 20 ms Opus-sized packet sent to every peer, R rounds, by each way of sending:
 *
 *   sender   RTCRtpSender.sendRtp (what ForwardListener does through werift)
 *   dtls     RTCDtlsTransport.sendRtp(payload, header): SRTP, then the ICE connection's send
 *   srtp+ice SrtpSession.encrypt, then Connection.send
 *   srtp+udp SrtpSession.encrypt, then the nominated pair's UDP socket directly
 *   fast+udp protectRtp (werift_fast_srtp.ts: no header object, reused scratch), then the UDP socket
 *   fast+fd  protectRtpInto a reused buffer, then sendto(2) on the socket's descriptor through FFI
 *            (lib/udp_fd_sender.ts): what ForwardListener does for AES-CM sessions
 *   srtp+fd  SrtpSession.encrypt, then sendto(2) on the descriptor: what it does for GCM sessions
 *   srtp     SrtpSession.encrypt alone
 *   udp      the UDP send of an already protected packet alone
 *   none     nothing (the round's own cost: the loop and the yield; subtract it from the others)
 *
 * Each round hands every peer its packet, then yields to the event loop once (so asynchronous continuations
 * of the sends are counted); the figure is the process's CPU time (every thread: the UDP sends may complete
 * off the JS thread) per packet over the rounds, median of 5 batches, on a process with nothing else to do.
 *
 *   deno run -A bench/forward_send.ts [--peers 50] [--rounds 200] [--srtp aes-cm|gcm]
 */
import { Buffer } from "node:buffer";
import process from "node:process";
import {
  createSelfSignedCertificate,
  RTCPeerConnection,
  RTCRtpCodecParameters,
  RtpHeader,
  RtpPacket,
} from "werift";
import type { RTCRtpSender } from "werift";
import { configureLogging } from "../lib/log.ts";
import { applyWeriftDtlsFix } from "../origin/rooms/werift_dtls_fix.ts";
import { applyWeriftFastSrtp, protectRtp, protectRtpInto } from "../origin/rooms/werift_fast_srtp.ts";
import { udpFdOfPort, UdpFdSender } from "../lib/udp_fd_sender.ts";
import { type DirectSend, directSendOf } from "../origin/rooms/forward_listener.ts";
import { PacketListenerClient } from "../origin/rooms/test_packet_listener.ts";

configureLogging({ level: "error" });
const arg = (name: string, dflt: number) => {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : dflt;
};
const PEERS = arg("peers", 50), ROUNDS = arg("rounds", 200);
/** `--srtp gcm`: the clients offer werift's default (AEAD_AES_128_GCM first); else AES-CM only, as libwebrtc. */
const SRTP = Deno.args.includes("--srtp") ? Deno.args[Deno.args.indexOf("--srtp") + 1] : "aes-cm";

applyWeriftDtlsFix();
applyWeriftFastSrtp();
const keys = await createSelfSignedCertificate({ signature: 3, hash: 4 } as never, 23 as never);

/** What the `dtls` and `srtp+ice` ways call beyond the direct path (werift 0.25.2 internals). */
interface Layers {
  dtlsTransport: {
    sendRtp(payload: Buffer, header: RtpHeader): Promise<number>;
    iceTransport: { connection: { send(data: Buffer): Promise<void> } };
  };
}

async function pair(): Promise<
  { server: RTCPeerConnection; sender: RTCRtpSender; client: PacketListenerClient }
> {
  const client = new PacketListenerClient({ srtp: SRTP === "gcm" ? "any" : "aes-cm" });
  const offer = await client.offer();
  const server = new RTCPeerConnection({
    codecs: {
      audio: [new RTCRtpCodecParameters({ mimeType: "audio/opus", clockRate: 48_000, channels: 2 })],
      video: [],
    },
    iceServers: [],
    dtls: { keys },
    iceLite: true,
    iceUseIpv6: false,
  });
  await server.setRemoteDescription({ type: "offer", sdp: offer });
  const t = server.getTransceivers().find((x) => x.kind === "audio")!;
  t.setDirection("sendonly");
  const answer = await server.createAnswer();
  await server.setLocalDescription({
    type: "answer",
    sdp: answer.sdp.replaceAll("a=setup:active", "a=setup:passive"),
  });
  while (server.iceGatheringState !== "complete") await new Promise((r) => setTimeout(r, 5));
  await client.accept(server.localDescription!.sdp);
  await client.waitFor(() => server.connectionState === "connected", 10_000, "connected");
  return { server, sender: t.sender, client };
}

const pairs: Awaited<ReturnType<typeof pair>>[] = [];
for (let i = 0; i < PEERS; i++) pairs.push(await pair());
for (const p of pairs) p.client.close();
await new Promise((r) => setTimeout(r, 500));

const payload = Buffer.from(new Uint8Array(100).map((_, i) => (i * 37) & 0xff));
// Each peer's packets count up by one, as a ForwardListener's do (its SRTP key stream is made in batches of
// consecutive packets).
const seqs = new Array<number>(PEERS + 1).fill(0);
const header = (i = PEERS) => {
  const seq = seqs[i]++;
  return new RtpHeader({
    payloadType: 111,
    sequenceNumber: seq & 0xffff,
    timestamp: (seq * 960) >>> 0,
    ssrc: 1234,
  });
};
const plainHeader = (i: number) => {
  const seq = seqs[i]++;
  return {
    payloadType: 111,
    sequenceNumber: seq & 0xffff,
    timestamp: (seq * 960) >>> 0,
    ssrc: 1234,
    marker: false,
  };
};
const layers = pairs.map((p) => p.sender as unknown as Layers);
// The same direct path ForwardListener takes (its SRTP session, cipher and nominated pair's socket).
const direct = pairs.map((p) => {
  const d = directSendOf(p.sender);
  if (!d) throw new Error("werift sender internals not as expected");
  return d;
});
const sendUdp = (d: DirectSend, packet: Buffer) => {
  const n = d.connection.nominated!;
  n.protocol.transport.socket!.send(packet, n.remoteAddr[1], n.remoteAddr[0]);
};
// protectRtp serves AES-CM sessions (what libwebrtc clients negotiate here); werift clients pick AES-GCM.
const profile = direct.every((d) => d.cipher) ? "AES-CM" : "AES-GCM";
const out = Buffer.alloc(1500);
const fds = direct.map((d) => {
  const n = d.connection.nominated!;
  const fd = udpFdOfPort(n.protocol.transport.socket!.address!().port);
  if (fd === null) throw new Error("no descriptor for the pair's socket");
  return new UdpFdSender(fd, n.remoteAddr[0], n.remoteAddr[1]);
});
const protectedPacket = direct[0].srtp.encrypt(payload, header());

const ways: Record<string, (i: number) => void> = {
  none: () => {},
  sender: (i) => void pairs[i].sender.sendRtp(new RtpPacket(header(i), payload)).catch(() => {}),
  dtls: (i) => void layers[i].dtlsTransport.sendRtp(payload, header(i)),
  "srtp+ice": (i) => {
    const packet = direct[i].srtp.encrypt(payload, header(i));
    void layers[i].dtlsTransport.iceTransport.connection.send(packet).catch(() => {});
  },
  "srtp+udp": (i) => sendUdp(direct[i], direct[i].srtp.encrypt(payload, header(i))),
  "fast+udp": (i) => sendUdp(direct[i], protectRtp(direct[i].cipher!, plainHeader(i), payload, 0)),
  "fast+fd": (i) => fds[i].send(out, protectRtpInto(direct[i].cipher!, plainHeader(i), payload, 0, out)),
  // What ForwardListener does for GCM sessions: werift's encrypt, then sendto on the descriptor.
  "srtp+fd": (i) => fds[i].send(direct[i].srtp.encrypt(payload, header(i))),
  srtp: (i) => void direct[i].srtp.encrypt(payload, header(i)),
  udp: (i) => sendUdp(direct[i], protectedPacket),
};

// What the connected peers cost when nothing is sent (their timers: RTCP, SCTP, ICE), over 3 s.
const idle0 = process.cpuUsage();
await new Promise((r) => setTimeout(r, 3000));
const idle = process.cpuUsage(idle0);
const idleCores = (idle.user + idle.system) / 1e6 / 3;
console.log(`idle      ${idleCores.toFixed(3)} cores for ${PEERS} peers sending nothing`);

const results: Record<string, number> = {};
console.log(`SRTP profile negotiated: ${profile}`);
if (profile !== "AES-CM") {
  delete ways["fast+udp"];
  delete ways["fast+fd"];
}
for (const [name, send] of Object.entries(ways)) {
  const batches: number[] = [];
  for (let b = 0; b < 6; b++) {
    const c0 = process.cpuUsage();
    for (let r = 0; r < ROUNDS / 5; r++) {
      for (let i = 0; i < PEERS; i++) send(i);
      await new Promise((res) => setTimeout(res, 0));
    }
    const c = process.cpuUsage(c0);
    const spent = (c.user + c.system) / 1000;
    if (b > 0) batches.push((spent * 1000) / ((ROUNDS / 5) * PEERS)); // first batch: warm-up
  }
  batches.sort((a, b) => a - b);
  results[name] = batches[Math.floor(batches.length / 2)];
  console.log(
    `${name.padEnd(9)} ${results[name].toFixed(1)} µs per packet (batches ${
      batches.map((x) => x.toFixed(1)).join(" ")
    })`,
  );
}
for (const p of pairs) await p.server.close().catch(() => {});
console.log(JSON.stringify({ peers: PEERS, rounds: ROUNDS, profile, idleCores, usPerPacket: results }));
Deno.exit(0);
