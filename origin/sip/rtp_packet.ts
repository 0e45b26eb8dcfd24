/** RTP fixed header (RFC 3550 5.1): parse (null for anything that is not a plausible RTP packet) and build. */
export interface RtpPacket {
  marker: boolean;
  payloadType: number;
  sequence: number;
  timestamp: number;
  ssrc: number;
  payload: Uint8Array;
}

export function parseRtp(buf: Uint8Array): RtpPacket | null {
  if (buf.length < 12) return null;
  const b0 = buf[0];
  if (b0 >> 6 !== 2) return null;
  const pt = buf[1] & 0x7f;
  // RTCP packet types 200–204 land on 72–76 with the marker bit; they are not RTP (RFC 5761 4).
  if (pt >= 72 && pt <= 76) return null;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let offset = 12 + (b0 & 0x0f) * 4;
  if (b0 & 0x10) {
    if (buf.length < offset + 4) return null;
    offset += 4 + dv.getUint16(offset + 2) * 4;
  }
  let end = buf.length;
  if (b0 & 0x20) {
    const pad = buf[buf.length - 1];
    if (pad === 0) return null;
    end -= pad;
  }
  if (offset > end) return null;
  return {
    marker: (buf[1] & 0x80) !== 0,
    payloadType: pt,
    sequence: dv.getUint16(2),
    timestamp: dv.getUint32(4),
    ssrc: dv.getUint32(8),
    payload: buf.subarray(offset, end),
  };
}

export function buildRtp(p: RtpPacket): Uint8Array {
  const out = new Uint8Array(12 + p.payload.length);
  const dv = new DataView(out.buffer);
  out[0] = 0x80;
  out[1] = (p.marker ? 0x80 : 0) | (p.payloadType & 0x7f);
  dv.setUint16(2, p.sequence & 0xffff);
  dv.setUint32(4, p.timestamp >>> 0);
  dv.setUint32(8, p.ssrc >>> 0);
  out.set(p.payload, 12);
  return out;
}
