/**
 * SRTP protection for werift's senders (AES-128-CM + HMAC-SHA1-80, the profile libwebrtc offers), computed
 * with per-session state instead of werift's per-packet objects. A shared room sends every packet once per
 * listener, and werift's own `encryptRtp` spent ~52 µs of JS-thread CPU per packet on this runtime (a new
 * AES-CTR cipher and a new HMAC object per packet, their buffers and garbage): two thirds of a listener's cost.
 *
 * Here, per session key (cached on the cipher instance): one AES-128-ECB cipher (node:crypto) that turns
 * counter blocks into key stream, and an HMAC-SHA1 whose keyed state is computed once (hmac_sha1.ts, no
 * allocation per tag). `protectRtpInto` (the forward listeners' path) takes its key stream from a batch made
 * for the next KS_PACKETS packets of the stream in one ECB call: AES-CM's key stream depends only on the SSRC
 * and the packet index, not on the payload, and one call per packet cost ~1.6 µs and ~0.8 KB of garbage.
 * The output is byte-identical to werift's (werift_fast_srtp_test.ts compares them on random packets).
 * werift's decryption (the bench's werift listener clients receive thousands of packets per second, and what
 * they cost is CPU their host cannot spend receiving on time) gets the same tag and key stream for unpadded
 * packets; padded or failing packets, SRTCP and GCM stay werift's.
 */
import { Buffer } from "node:buffer";
import { type Cipheriv, createCipheriv } from "node:crypto";
import { SrtpSession } from "werift";
import { HmacSha1 } from "./hmac_sha1.ts";

/** Packets whose key stream is made in one ECB call (0.5 s of 20 ms packets). */
const KS_PACKETS = 25;
/** Key stream blocks made per packet: payloads up to 256 bytes (a 20 ms Opus packet is ~120) use the batch. */
const KS_BLOCKS = 16;

interface RtpHeaderLike {
  sequenceNumber: number;
  ssrc: number;
  serializeSize: number;
  serialize(size: number): Buffer;
}
/** What werift's SRTP context has parsed of a received packet's header before it decrypts it. */
interface ReceivedHeaderLike {
  sequenceNumber: number;
  ssrc: number;
  payloadOffset: number;
  padding: boolean;
  paddingSize: number;
}
interface CipherAesCtrLike {
  srtpSessionKey: Buffer;
  srtpSessionSalt: Buffer;
  srtpSessionAuthTag: Buffer;
  authTagLength: number;
  encryptRtp(header: RtpHeaderLike, payload: Buffer, rolloverCounter: number): Buffer;
  decryptRtp(cipherText: Buffer, rolloverCounter: number, header?: ReceivedHeaderLike): [Buffer, unknown];
  generateSrtpAuthTag(roc: number, ...buffers: Uint8Array[]): Buffer;
}
interface FastState {
  key: Buffer;
  authKey: Buffer;
  ecb: Cipheriv;
  /** Counter blocks by block count, the ROC bytes and a view on them, reused packet after packet. */
  counters: Buffer[];
  roc: Uint8Array;
  rocView: DataView;
  mac: HmacSha1;
  /**
   * Key stream of packets `ksFirst` … `ksFirst + KS_PACKETS − 1` (index = ROC · 2^16 + SEQ) of SSRC `ksSsrc`,
   * KS_BLOCKS blocks each; the counter blocks it is made from are reused.
   */
  ks: Buffer | null;
  /** What keyStream() chose for the current packet: the batch, or a large payload's own key stream. */
  stream: Buffer | null;
  /** The tag computed to check a received packet's. */
  check: Uint8Array;
  ksFirst: number;
  ksSsrc: number;
  ksCounters: Buffer | null;
  /** The previous packet's index (ROC · 2^16 + SEQ): whether the stream counts up. */
  lastIndex: number;
}

const states = new WeakMap<CipherAesCtrLike, FastState>();
let original: CipherAesCtrLike["encryptRtp"] | null = null;
let originalTag: CipherAesCtrLike["generateSrtpAuthTag"] | null = null;
let originalDecrypt: CipherAesCtrLike["decryptRtp"] | null = null;

function stateOf(c: CipherAesCtrLike): FastState {
  let s = states.get(c);
  // The keys are fixed for a cipher's life; the check keeps this right if werift ever re-keys one in place.
  if (!s || s.key !== c.srtpSessionKey || s.authKey !== c.srtpSessionAuthTag) {
    const ecb = createCipheriv("aes-128-ecb", c.srtpSessionKey, null);
    ecb.setAutoPadding(false);
    s = {
      key: c.srtpSessionKey,
      authKey: c.srtpSessionAuthTag,
      ecb,
      counters: [],
      roc: new Uint8Array(4),
      rocView: new DataView(new ArrayBuffer(0)),
      mac: new HmacSha1(c.srtpSessionAuthTag),
      ks: null,
      stream: null,
      check: new Uint8Array(20),
      ksFirst: 0,
      ksSsrc: 0,
      ksCounters: null,
      lastIndex: -2,
    };
    s.rocView = new DataView(s.roc.buffer);
    states.set(c, s);
  }
  return s;
}

/** RFC 3711 §4.1.1: IV = (salt · 2^16) XOR (SSRC · 2^64) XOR (index · 2^16); block i adds i. */
function fastEncryptRtp(this: CipherAesCtrLike, header: RtpHeaderLike, payload: Buffer, roc: number): Buffer {
  const s = stateOf(this);
  const headerBuffer = header.serialize(header.serializeSize);
  const n = payload.length;
  const at = keyStream(s, this.srtpSessionSalt, header.ssrc, roc, header.sequenceNumber, n);
  const stream = s.stream!;
  const out = Buffer.allocUnsafe(headerBuffer.length + n + this.authTagLength);
  headerBuffer.copy(out, 0);
  const p = headerBuffer.length;
  for (let i = 0; i < n; i++) out[p + i] = payload[i] ^ stream[at + i];
  s.rocView.setUint32(0, roc >>> 0);
  s.mac.begin().update(out, 0, p + n).update(s.roc).finish(out, p + n, this.authTagLength);
  return out;
}

/** The fields of a plain RTP header (version 2, no padding, extension or CSRC: 12 bytes). */
export interface PlainRtpHeader {
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  marker: boolean;
}

/**
 * One protected RTP packet for `cipher`'s session, as fastEncryptRtp makes it but without werift's header
 * object and with its scratch buffers reused: the header is written into the output, the key stream comes from
 * the session's batch (one ECB call per KS_PACKETS packets of a stream that counts up). The output is a new
 * buffer (a UDP send may still hold the previous one). `roc` is the rollover counter of the sender's sequence
 * numbers.
 */
export function protectRtp(
  cipher: CipherAesCtrLike,
  h: PlainRtpHeader,
  payload: Uint8Array,
  roc: number,
): Buffer {
  const out = Buffer.allocUnsafe(12 + payload.length + cipher.authTagLength);
  protectRtpInto(cipher, h, payload, roc, out);
  return out;
}

/**
 * protectRtp into `out` (reused by a caller that sends synchronously); returns the packet's length. `out` must
 * hold 12 + payload + tag bytes.
 */
export function protectRtpInto(
  cipher: CipherAesCtrLike,
  h: PlainRtpHeader,
  payload: Uint8Array,
  roc: number,
  out: Buffer,
): number {
  const s = stateOf(cipher);
  const n = payload.length;
  const length = 12 + n + cipher.authTagLength;
  if (out.length < length) throw new RangeError(`packet of ${length} bytes does not fit ${out.length}`);
  const at = keyStream(s, cipher.srtpSessionSalt, h.ssrc, roc, h.sequenceNumber, n);
  const stream = s.stream!;
  out[0] = 0x80;
  out[1] = (h.marker ? 0x80 : 0) | (h.payloadType & 0x7f);
  out.writeUInt16BE(h.sequenceNumber, 2);
  out.writeUInt32BE(h.timestamp >>> 0, 4);
  out.writeUInt32BE(h.ssrc >>> 0, 8);
  for (let i = 0; i < n; i++) out[12 + i] = payload[i] ^ stream[at + i];
  s.rocView.setUint32(0, roc >>> 0);
  s.mac.begin().update(out, 0, 12 + n).update(s.roc).finish(out, 12 + n, cipher.authTagLength);
  return length;
}

/**
 * The key stream of packet (ssrc, roc, seq) for `n` payload bytes: left in `s.stream`, the packet's part
 * starting at the returned offset. Payloads the batch covers come from it (refilled when the packet is outside
 * it); larger ones get their own ECB call.
 */
function keyStream(
  s: FastState,
  salt: Uint8Array,
  ssrc: number,
  roc: number,
  seq: number,
  n: number,
): number {
  const blocks = Math.ceil(n / 16);
  const index = (roc >>> 0) * 0x10000 + seq, previous = s.lastIndex;
  s.lastIndex = index;
  if (blocks <= KS_BLOCKS) {
    if (s.ks && s.ksSsrc === ssrc >>> 0 && index >= s.ksFirst && index < s.ksFirst + KS_PACKETS) {
      s.stream = s.ks;
      return (index - s.ksFirst) * KS_BLOCKS * 16;
    }
    // A new batch only where the stream counts up (its first packet, or the one after the previous): packets
    // that jump about (reordered, or streams sharing a session) would waste one on every packet, 25 times the
    // work of their own key stream.
    if (!s.ks || index === previous + 1) {
      refillKeyStream(s, salt, ssrc >>> 0, index);
      s.stream = s.ks;
      return 0;
    }
  }
  // One buffer of counter blocks per block count, reused.
  const counters = s.counters[blocks] ??= Buffer.alloc(blocks * 16);
  for (let b = 0; b < blocks; b++) writeCounter(counters, b * 16, salt, ssrc, roc, seq, b);
  s.stream = s.ecb.update(counters);
  return 0;
}

/**
 * RFC 3711 §4.1.1 counter block `b` of packet (ssrc, roc, seq), written at `o`:
 * (salt · 2^16) XOR (SSRC · 2^64) XOR (index · 2^16), plus b.
 */
function writeCounter(
  counters: Buffer,
  o: number,
  salt: Uint8Array,
  ssrc: number,
  roc: number,
  seq: number,
  b: number,
): void {
  counters.fill(0, o, o + 16);
  counters.writeUInt32BE(ssrc >>> 0, o + 4);
  counters.writeUInt32BE(roc >>> 0, o + 8);
  counters.writeUInt16BE(seq, o + 12);
  for (let i = 0; i < salt.length; i++) counters[o + i] ^= salt[i];
  // Block counter in the low 16 bits (zero in the IV: the salt is 112 bits).
  counters.writeUInt16BE(b, o + 14);
}

/** Key stream for KS_PACKETS packets from `first` (ROC · 2^16 + SEQ) of `ssrc`, in one ECB call. */
function refillKeyStream(s: FastState, salt: Uint8Array, ssrc: number, first: number): void {
  const counters = s.ksCounters ??= Buffer.alloc(KS_PACKETS * KS_BLOCKS * 16);
  for (let p = 0; p < KS_PACKETS; p++) {
    const index = first + p;
    const roc = Math.floor(index / 0x10000), seq = index % 0x10000;
    for (let b = 0; b < KS_BLOCKS; b++) {
      writeCounter(counters, (p * KS_BLOCKS + b) * 16, salt, ssrc, roc, seq, b);
    }
  }
  s.ks = s.ecb.update(counters);
  s.ksFirst = first;
  s.ksSsrc = ssrc;
}

/** `cipher` is werift's AES-CM cipher (the profile protectRtp serves), with the fast paths installed. */
export function isFastCtrCipher(cipher: unknown): cipher is CipherAesCtrLike {
  return original !== null && typeof cipher === "object" && cipher !== null &&
    Object.getPrototypeOf(cipher) === ctrProto;
}

function ctrPrototype(): CipherAesCtrLike {
  const zero = Buffer.alloc(16), salt = Buffer.alloc(14);
  const session = new SrtpSession({
    keys: { localMasterKey: zero, localMasterSalt: salt, remoteMasterKey: zero, remoteMasterSalt: salt },
    profile: 1, // SRTP_AES128_CM_HMAC_SHA1_80
  } as never) as unknown as { localContext: { cipher: CipherAesCtrLike } };
  return Object.getPrototypeOf(session.localContext.cipher) as CipherAesCtrLike;
}

/**
 * werift's decryptRtp for an unpadded packet whose tag checks out: the tag from the keyed HMAC state, the key
 * stream from the session's batch. Anything else (a padded packet, a wrong tag, a packet too short) goes to
 * werift's own decryptRtp, which throws its SrtpAuthenticationError or handles the padding as before.
 */
function fastDecryptRtp(
  this: CipherAesCtrLike,
  cipherText: Buffer,
  roc: number,
  header?: ReceivedHeaderLike,
): [Buffer, unknown] {
  const tagAt = cipherText.length - this.authTagLength;
  if (!header || header.padding || tagAt < header.payloadOffset) {
    return originalDecrypt!.call(this, cipherText, roc, header);
  }
  const s = stateOf(this);
  s.rocView.setUint32(0, roc >>> 0);
  s.mac.begin().update(cipherText, 0, tagAt).update(s.roc).finish(s.check, 0, this.authTagLength);
  let diff = 0;
  for (let i = 0; i < this.authTagLength; i++) diff |= s.check[i] ^ cipherText[tagAt + i];
  if (diff !== 0) return originalDecrypt!.call(this, cipherText, roc, header);
  const p = header.payloadOffset, n = tagAt - p;
  const at = keyStream(s, this.srtpSessionSalt, header.ssrc, roc, header.sequenceNumber, n);
  const stream = s.stream!;
  const out = Buffer.allocUnsafe(tagAt);
  cipherText.copy(out, 0, 0, p);
  for (let i = 0; i < n; i++) out[p + i] = cipherText[p + i] ^ stream[at + i];
  header.paddingSize = 0;
  return [out, header];
}

/** werift's SRTP auth tag (used when it decrypts), from the cached keyed HMAC state. */
function fastAuthTag(this: CipherAesCtrLike, roc: number, ...buffers: Uint8Array[]): Buffer {
  const s = stateOf(this);
  s.mac.begin();
  for (const b of buffers) s.mac.update(b);
  s.rocView.setUint32(0, roc >>> 0);
  const tag = Buffer.alloc(10);
  s.mac.update(s.roc).finish(tag, 0, 10);
  return tag;
}

let ctrProto: CipherAesCtrLike | null = null;

/** Install the fast paths on werift's AES-CM cipher (idempotent). */
export function applyWeriftFastSrtp(): void {
  if (original) return;
  const proto = ctrProto = ctrPrototype();
  if (
    typeof proto.encryptRtp !== "function" || typeof proto.generateSrtpAuthTag !== "function" ||
    typeof proto.decryptRtp !== "function"
  ) {
    throw new Error("werift CipherAesCtr methods not found");
  }
  original = proto.encryptRtp;
  originalTag = proto.generateSrtpAuthTag;
  originalDecrypt = proto.decryptRtp;
  proto.encryptRtp = fastEncryptRtp;
  proto.decryptRtp = fastDecryptRtp;
  proto.generateSrtpAuthTag = fastAuthTag;
}

/** werift's own encryptRtp with its own auth tag (for the equivalence test). */
export function referenceEncryptRtp(
  cipher: CipherAesCtrLike,
  header: RtpHeaderLike,
  payload: Buffer,
  roc: number,
): Buffer {
  const proto = ctrPrototype();
  const self = Object.create(cipher, {
    generateSrtpAuthTag: { value: originalTag ?? proto.generateSrtpAuthTag },
  });
  return (original ?? proto.encryptRtp).call(self, header, payload, roc);
}

/** werift's own auth tag (for the equivalence test). */
export function referenceAuthTag(cipher: CipherAesCtrLike, roc: number, ...buffers: Uint8Array[]): Buffer {
  return (originalTag ?? ctrPrototype().generateSrtpAuthTag).call(cipher, roc, ...buffers);
}

export type { CipherAesCtrLike };
