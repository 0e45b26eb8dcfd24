/**
 * Writes 8 kHz PCM as a pcap of G.711 RTP packets (20 ms each, Ethernet/IPv4/UDP framing, 20 ms apart) for
 * SIPp's `play_pcap_audio`, so a load run can play speech the bundled recognizer understands. SIPp rewrites the
 * addresses and ports; only the RTP payload and the capture timing matter.
 */
import { encodeG711 } from "../origin/sip/g711.ts";
import { buildRtp } from "../origin/sip/rtp_packet.ts";

export function rtpPcap(pcm8k: Int16Array, payloadType: 0 | 8 = 8): Uint8Array {
  const packets: Uint8Array[] = [];
  const ssrc = 0x5a5a1234;
  for (let i = 0, n = 0; i + 160 <= pcm8k.length; i += 160, n++) {
    const rtp = buildRtp({
      marker: n === 0,
      payloadType,
      sequence: n & 0xffff,
      timestamp: (n * 160) >>> 0,
      ssrc,
      payload: encodeG711(payloadType, pcm8k.subarray(i, i + 160)),
    });
    const udpLen = 8 + rtp.length;
    const ipLen = 20 + udpLen;
    const frame = new Uint8Array(14 + ipLen);
    const dv = new DataView(frame.buffer);
    dv.setUint16(12, 0x0800); // IPv4
    frame[14] = 0x45;
    dv.setUint16(16, ipLen);
    frame[22] = 64; // TTL
    frame[23] = 17; // UDP
    frame.set([127, 0, 0, 1], 26);
    frame.set([127, 0, 0, 1], 30);
    dv.setUint16(34, 6000);
    dv.setUint16(36, 6002);
    dv.setUint16(38, udpLen);
    frame.set(rtp, 42);
    const rec = new Uint8Array(16 + frame.length);
    const rv = new DataView(rec.buffer);
    const us = n * 20_000;
    rv.setUint32(0, Math.floor(us / 1e6), true);
    rv.setUint32(4, us % 1e6, true);
    rv.setUint32(8, frame.length, true);
    rv.setUint32(12, frame.length, true);
    rec.set(frame, 16);
    packets.push(rec);
  }
  const header = new Uint8Array(24);
  const hv = new DataView(header.buffer);
  hv.setUint32(0, 0xa1b2c3d4, true);
  hv.setUint16(4, 2, true);
  hv.setUint16(6, 4, true);
  hv.setUint32(16, 65535, true);
  hv.setUint32(20, 1, true); // Ethernet
  const total = header.length + packets.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(total);
  out.set(header);
  let off = header.length;
  for (const p of packets) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
