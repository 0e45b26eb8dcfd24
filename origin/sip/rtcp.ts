/**
 * RTCP (RFC 3550 6.4–6.6): builds compound SR/RR + SDES(CNAME) [+ BYE] and parses compound packets into a
 * list of reports. Parsing checks every length field against the buffer and returns null for anything that
 * is not a valid compound packet.
 */
import { NTP_EPOCH_OFFSET_S } from "../../lib/ntp_time.ts";

export interface ReportBlock {
  ssrc: number;
  fractionLost: number;
  cumulativeLost: number;
  highestSeq: number;
  jitter: number;
  lsr: number;
  dlsr: number;
}

export type RtcpPacket =
  | {
    type: "sr";
    ssrc: number;
    ntpSec: number;
    ntpFrac: number;
    rtpTimestamp: number;
    packets: number;
    octets: number;
    reports: ReportBlock[];
  }
  | { type: "rr"; ssrc: number; reports: ReportBlock[] }
  | { type: "sdes"; ssrc: number; cname?: string }
  | { type: "bye"; ssrcs: number[] }
  | { type: "other"; pt: number };

export function parseRtcp(buf: Uint8Array): RtcpPacket[] | null {
  const out: RtcpPacket[] = [];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < 4) return null;
    if (buf[off] >> 6 !== 2) return null;
    const count = buf[off] & 0x1f;
    const pt = buf[off + 1];
    const len = (dv.getUint16(off + 2) + 1) * 4;
    if (off + len > buf.length) return null;
    // The first packet of a compound must be SR or RR (RFC 3550 6.1).
    if (off === 0 && pt !== 200 && pt !== 201) return null;
    const body = off + 4;
    const readBlocks = (start: number): ReportBlock[] | null => {
      const blocks: ReportBlock[] = [];
      for (let i = 0; i < count; i++) {
        const b = start + i * 24;
        if (b + 24 > off + len) return null;
        const lostRaw = dv.getUint32(b + 4) & 0xffffff;
        blocks.push({
          ssrc: dv.getUint32(b),
          fractionLost: buf[b + 4],
          cumulativeLost: lostRaw & 0x800000 ? lostRaw - 0x1000000 : lostRaw,
          highestSeq: dv.getUint32(b + 8),
          jitter: dv.getUint32(b + 12),
          lsr: dv.getUint32(b + 16),
          dlsr: dv.getUint32(b + 20),
        });
      }
      return blocks;
    };
    if (pt === 200) {
      if (len < 28) return null;
      const reports = readBlocks(body + 24);
      if (!reports) return null;
      out.push({
        type: "sr",
        ssrc: dv.getUint32(body),
        ntpSec: dv.getUint32(body + 4),
        ntpFrac: dv.getUint32(body + 8),
        rtpTimestamp: dv.getUint32(body + 12),
        packets: dv.getUint32(body + 16),
        octets: dv.getUint32(body + 20),
        reports,
      });
    } else if (pt === 201) {
      if (len < 8) return null;
      const reports = readBlocks(body + 4);
      if (!reports) return null;
      out.push({ type: "rr", ssrc: dv.getUint32(body), reports });
    } else if (pt === 202) {
      let cname: string | undefined;
      let ssrc = 0;
      if (count > 0 && len >= 8) {
        ssrc = dv.getUint32(body);
        let i = body + 4;
        while (i + 2 <= off + len && buf[i] !== 0) {
          const itemLen = buf[i + 1];
          if (i + 2 + itemLen > off + len) return null;
          if (buf[i] === 1) cname = new TextDecoder().decode(buf.subarray(i + 2, i + 2 + itemLen));
          i += 2 + itemLen;
        }
      }
      out.push({ type: "sdes", ssrc, cname });
    } else if (pt === 203) {
      if (4 + count * 4 > len) return null;
      const ssrcs = [];
      for (let i = 0; i < count; i++) ssrcs.push(dv.getUint32(body + i * 4));
      out.push({ type: "bye", ssrcs });
    } else {
      out.push({ type: "other", pt });
    }
    off += len;
  }
  return out;
}

export interface RtcpStats {
  ssrc: number;
  cname: string;
  /** Sender info, when we have sent RTP. */
  sender?: { ntpMs: number; rtpTimestamp: number; packets: number; octets: number };
  /** Reception report for the remote source, when we have received RTP. */
  report?: ReportBlock;
  bye?: boolean;
}

export function buildRtcp(s: RtcpStats): Uint8Array {
  const parts: Uint8Array[] = [];
  const rc = s.report ? 1 : 0;
  const writeBlock = (dv: DataView, at: number, r: ReportBlock) => {
    dv.setUint32(at, r.ssrc);
    dv.setUint32(at + 4, ((r.fractionLost & 0xff) << 24) | (r.cumulativeLost & 0xffffff));
    dv.setUint32(at + 8, r.highestSeq >>> 0);
    dv.setUint32(at + 12, r.jitter >>> 0);
    dv.setUint32(at + 16, r.lsr >>> 0);
    dv.setUint32(at + 20, r.dlsr >>> 0);
  };
  if (s.sender) {
    const p = new Uint8Array(28 + rc * 24);
    const dv = new DataView(p.buffer);
    p[0] = 0x80 | rc;
    p[1] = 200;
    dv.setUint16(2, p.length / 4 - 1);
    dv.setUint32(4, s.ssrc);
    const sec = Math.floor(s.sender.ntpMs / 1000);
    dv.setUint32(8, (sec + NTP_EPOCH_OFFSET_S) >>> 0);
    dv.setUint32(12, Math.floor(((s.sender.ntpMs % 1000) / 1000) * 2 ** 32) >>> 0);
    dv.setUint32(16, s.sender.rtpTimestamp >>> 0);
    dv.setUint32(20, s.sender.packets >>> 0);
    dv.setUint32(24, s.sender.octets >>> 0);
    if (s.report) writeBlock(dv, 28, s.report);
    parts.push(p);
  } else {
    const p = new Uint8Array(8 + rc * 24);
    const dv = new DataView(p.buffer);
    p[0] = 0x80 | rc;
    p[1] = 201;
    dv.setUint16(2, p.length / 4 - 1);
    dv.setUint32(4, s.ssrc);
    if (s.report) writeBlock(dv, 8, s.report);
    parts.push(p);
  }
  const cname = new TextEncoder().encode(s.cname.slice(0, 255));
  const sdesLen = Math.ceil((4 + 2 + cname.length + 1) / 4) * 4;
  const sdes = new Uint8Array(4 + sdesLen);
  const sdv = new DataView(sdes.buffer);
  sdes[0] = 0x81;
  sdes[1] = 202;
  sdv.setUint16(2, sdes.length / 4 - 1);
  sdv.setUint32(4, s.ssrc);
  sdes[8] = 1;
  sdes[9] = cname.length;
  sdes.set(cname, 10);
  parts.push(sdes);
  if (s.bye) {
    const bye = new Uint8Array(8);
    const bdv = new DataView(bye.buffer);
    bye[0] = 0x81;
    bye[1] = 203;
    bdv.setUint16(2, 1);
    bdv.setUint32(4, s.ssrc);
    parts.push(bye);
  }
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
