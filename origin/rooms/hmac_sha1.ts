/**
 * HMAC-SHA1 (RFC 2104 over FIPS 180-4 SHA-1) for SRTP's per-packet authentication tag, with no allocation per
 * message: the keyed inner and outer states are computed once per key, and each message is hashed through
 * preallocated block and schedule buffers.
 *
 * Why not a library: a shared room computes one tag per listener per 20 ms packet (15,000 a second at 300
 * listeners). @noble/hashes (cloning its keyed state per packet) left ~1.1 KB of garbage per tag and node:crypto
 * allocates a buffer and an object per call; at that rate the collections they cause pause the thread that
 * sends every listener's packets. The output is checked against node:crypto's createHmac in hmac_sha1_test.ts.
 */

const BLOCK = 64;

export class HmacSha1 {
  /** SHA-1 state after the key XOR ipad block, and after the key XOR opad block. */
  readonly #inner = new Int32Array(5);
  readonly #outer = new Int32Array(5);
  /** The running state, the current block, the message schedule: reused for every message. */
  readonly #h = new Int32Array(5);
  readonly #block = new Uint8Array(BLOCK);
  readonly #w = new Int32Array(80);
  #fill = 0;
  #length = 0;
  #started = false;

  constructor(key: Uint8Array) {
    if (key.length > BLOCK) {
      throw new RangeError("HMAC-SHA1 keys longer than 64 bytes are not supported here");
    }
    const pad = new Uint8Array(BLOCK);
    for (const [target, byte] of [[this.#inner, 0x36], [this.#outer, 0x5c]] as const) {
      pad.fill(byte);
      for (let i = 0; i < key.length; i++) pad[i] = key[i] ^ byte;
      this.#h.set(INITIAL);
      this.#compress(pad, 0);
      target.set(this.#h);
    }
  }

  /** Start a message (the previous one, if unfinished, is dropped). */
  begin(): this {
    this.#h.set(this.#inner);
    this.#fill = 0;
    this.#length = BLOCK;
    this.#started = true;
    return this;
  }

  /** Append `data[from, to)` to the message. */
  update(data: Uint8Array, from = 0, to = data.length): this {
    if (!this.#started) throw new Error("HmacSha1.update before begin");
    this.#length += to - from;
    let i = from;
    if (this.#fill > 0) {
      while (i < to && this.#fill < BLOCK) this.#block[this.#fill++] = data[i++];
      if (this.#fill < BLOCK) return this;
      this.#compress(this.#block, 0);
      this.#fill = 0;
    }
    for (; i + BLOCK <= to; i += BLOCK) this.#compress(data, i);
    while (i < to) this.#block[this.#fill++] = data[i++];
    return this;
  }

  /** The first `length` bytes of the tag (SRTP uses 10) into `out` at `at`. */
  finish(out: Uint8Array, at = 0, length = 20): void {
    if (!this.#started) throw new Error("HmacSha1.finish before begin");
    this.#started = false;
    this.#pad(this.#length);
    // The outer hash: opad state, then the 20-byte inner digest, padded, in one block.
    const b = this.#block;
    const h = this.#h;
    for (let j = 0; j < 5; j++) {
      const v = h[j];
      b[j * 4] = v >>> 24;
      b[j * 4 + 1] = v >>> 16;
      b[j * 4 + 2] = v >>> 8;
      b[j * 4 + 3] = v;
    }
    h.set(this.#outer);
    this.#fill = 20;
    this.#pad(BLOCK + 20);
    const n = Math.min(length, 20);
    for (let j = 0; j < n; j++) out[at + j] = h[j >> 2] >>> (24 - 8 * (j & 3));
  }

  /** SHA-1 padding of a message of `total` bytes whose tail (`#fill` bytes) is in the block. */
  #pad(total: number): void {
    const b = this.#block;
    b[this.#fill++] = 0x80;
    if (this.#fill > BLOCK - 8) {
      b.fill(0, this.#fill);
      this.#compress(b, 0);
      this.#fill = 0;
    }
    b.fill(0, this.#fill, BLOCK - 8);
    const bits = total * 8;
    const hi = Math.floor(bits / 0x100000000);
    b[56] = hi >>> 24;
    b[57] = hi >>> 16;
    b[58] = hi >>> 8;
    b[59] = hi;
    b[60] = bits >>> 24;
    b[61] = bits >>> 16;
    b[62] = bits >>> 8;
    b[63] = bits;
    this.#compress(b, 0);
    this.#fill = 0;
  }

  #compress(data: Uint8Array, at: number): void {
    const w = this.#w;
    for (let t = 0; t < 16; t++) {
      const o = at + t * 4;
      w[t] = (data[o] << 24) | (data[o + 1] << 16) | (data[o + 2] << 8) | data[o + 3];
    }
    for (let t = 16; t < 80; t++) {
      const x = w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16];
      w[t] = (x << 1) | (x >>> 31);
    }
    const h = this.#h;
    let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (let t = 0; t < 80; t++) {
      let f: number, k: number;
      if (t < 20) {
        f = (b & c) | (~b & d);
        k = 0x5a827999;
      } else if (t < 40) {
        f = b ^ c ^ d;
        k = 0x6ed9eba1;
      } else if (t < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8f1bbcdc;
      } else {
        f = b ^ c ^ d;
        k = 0xca62c1d6;
      }
      const temp = (((a << 5) | (a >>> 27)) + f + e + k + w[t]) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = temp;
    }
    h[0] = (h[0] + a) | 0;
    h[1] = (h[1] + b) | 0;
    h[2] = (h[2] + c) | 0;
    h[3] = (h[3] + d) | 0;
    h[4] = (h[4] + e) | 0;
  }
}

const INITIAL = new Int32Array([0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0]);
