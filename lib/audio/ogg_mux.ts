/**
 * Ogg page writer (RFC 3533) for one logical stream — just enough to put Opus packets into an .opus file.
 * Hand-written because no maintained npm package muxes Ogg without a browser or an ffmpeg build (the decoders
 * in the wasm-audio-decoders family only demux). Each packet lies whole on one page (lacing values of 255
 * plus the remainder); a page closes when the next packet would not fit its 255 segments or when the caller
 * flushes, so streaming output can flush a page per write.
 */

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let k = 0; k < 8; k++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    t[i] = r >>> 0;
  }
  return t;
})();

/** Ogg's CRC-32: polynomial 0x04C11DB7, not reflected, initial value 0, no final XOR. */
export function oggCrc32(bytes: Uint8Array): number {
  let crc = 0;
  for (let i = 0; i < bytes.length; i++) {
    crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ bytes[i]) & 0xff]) >>> 0;
  }
  return crc;
}

const HEADER_BOS = 2, HEADER_EOS = 4;
const MAX_SEGMENTS = 255;
/** A packet must fit one page's lacing table (Opus packets are at most a few kB, far below this). */
export const MAX_OGG_PACKET = MAX_SEGMENTS * 255 - 1;

export class OggPageWriter {
  private seq = 0;
  private pending: Uint8Array[] = [];
  private lacing: number[] = [];
  private granule = 0n;
  private wroteFirst = false;

  constructor(private readonly serial: number) {}

  /** Queue one packet that ends at `granule`; returns the page it closed, if the open page was full. */
  addPacket(packet: Uint8Array, granule: bigint): Uint8Array | null {
    if (packet.length > MAX_OGG_PACKET) {
      throw new RangeError(`Ogg packet of ${packet.length} bytes is too large`);
    }
    const need = Math.floor(packet.length / 255) + 1;
    const closed = this.lacing.length + need > MAX_SEGMENTS ? this.page(false) : null;
    for (let i = 0; i < need - 1; i++) this.lacing.push(255);
    this.lacing.push(packet.length % 255);
    this.pending.push(packet);
    this.granule = granule;
    return closed;
  }

  /** Close the open page (null when nothing is queued); `last` marks it end-of-stream. */
  flush(last = false): Uint8Array | null {
    if (this.lacing.length === 0 && !last) return null;
    return this.page(last);
  }

  private page(eos: boolean): Uint8Array {
    const segs = this.lacing.length;
    const bodyLen = this.pending.reduce((n, p) => n + p.length, 0);
    const page = new Uint8Array(27 + segs + bodyLen);
    const dv = new DataView(page.buffer);
    page.set([0x4f, 0x67, 0x67, 0x53], 0); // "OggS", version 0
    page[5] = (this.wroteFirst ? 0 : HEADER_BOS) | (eos ? HEADER_EOS : 0);
    dv.setBigInt64(6, this.granule, true);
    dv.setUint32(14, this.serial, true);
    dv.setUint32(18, this.seq++, true);
    page[26] = segs;
    page.set(this.lacing, 27);
    let at = 27 + segs;
    for (const p of this.pending) {
      page.set(p, at);
      at += p.length;
    }
    dv.setUint32(22, oggCrc32(page), true);
    this.wroteFirst = true;
    this.pending = [];
    this.lacing = [];
    return page;
  }
}
