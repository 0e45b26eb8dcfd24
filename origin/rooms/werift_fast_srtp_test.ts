import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import { RtpHeader, SrtpSession } from "werift";
import {
  applyWeriftFastSrtp,
  type CipherAesCtrLike,
  isFastCtrCipher,
  protectRtp,
  protectRtpInto,
  referenceAuthTag,
  referenceEncryptRtp,
} from "./werift_fast_srtp.ts";

function session(): { cipher: CipherAesCtrLike; session: SrtpSession } {
  const s = new SrtpSession({
    keys: {
      localMasterKey: randomBytes(16),
      localMasterSalt: randomBytes(14),
      remoteMasterKey: randomBytes(16),
      remoteMasterSalt: randomBytes(14),
    },
    profile: 1,
  } as never);
  return {
    cipher: (s as unknown as { localContext: { cipher: CipherAesCtrLike } }).localContext.cipher,
    session: s,
  };
}

/** A sending and a receiving SRTP session (AES-CM) with each other's keys. */
function txRx(): { tx: SrtpSession; rx: SrtpSession } {
  const key = randomBytes(16), salt = randomBytes(14), other = randomBytes(16), otherSalt = randomBytes(14);
  const make = (lk: Buffer, ls: Buffer, rk: Buffer, rs: Buffer) =>
    new SrtpSession({
      keys: { localMasterKey: lk, localMasterSalt: ls, remoteMasterKey: rk, remoteMasterSalt: rs },
      profile: 1,
    } as never);
  return { tx: make(key, salt, other, otherSalt), rx: make(other, otherSalt, key, salt) };
}

Deno.test("werift fast SRTP: byte-identical to werift's AES-CM/HMAC-SHA1-80 on 500 random packets", () => {
  applyWeriftFastSrtp();
  applyWeriftFastSrtp(); // idempotent
  for (let k = 0; k < 5; k++) {
    const { cipher } = session();
    for (let i = 0; i < 100; i++) {
      const header = new RtpHeader({
        payloadType: 111,
        sequenceNumber: Math.floor(Math.random() * 0x10000),
        timestamp: Math.floor(Math.random() * 0x1_0000_0000),
        ssrc: Math.floor(Math.random() * 0x1_0000_0000),
        marker: i % 7 === 0,
      });
      const payload = randomBytes(i === 0 ? 0 : 1 + Math.floor(Math.random() * 1200));
      const roc = i % 3 === 0 ? Math.floor(Math.random() * 0x1_0000_0000) : 0;
      const fast = cipher.encryptRtp(header, payload, roc);
      const ref = referenceEncryptRtp(cipher, header, payload, roc);
      assert.ok(Buffer.compare(fast, ref) === 0, `packet ${k}/${i} (${payload.length} B) differs`);
      const parts = [randomBytes(12), payload];
      assert.ok(
        Buffer.compare(cipher.generateSrtpAuthTag(roc, ...parts), referenceAuthTag(cipher, roc, ...parts)) ===
          0,
        `auth tag ${k}/${i}`,
      );
    }
  }
});

Deno.test("werift fast SRTP: the receiving side of werift authenticates and decrypts what it protects", () => {
  applyWeriftFastSrtp();
  const { tx, rx } = txRx();
  for (let seq = 65530; seq < 65545; seq++) {
    const header = new RtpHeader({
      payloadType: 111,
      sequenceNumber: seq & 0xffff,
      timestamp: seq * 960,
      ssrc: 42,
    });
    const payload = randomBytes(100);
    const packet = tx.encrypt(payload, header);
    const plain = rx.decrypt(packet);
    assert.ok(Buffer.compare(plain.subarray(plain.length - 100), payload) === 0, `seq ${seq}`);
  }
});

Deno.test("werift fast SRTP: protectRtp (no header object, reused scratch) is byte-identical to werift's", () => {
  applyWeriftFastSrtp();
  for (let k = 0; k < 3; k++) {
    const { cipher } = session();
    assert.ok(isFastCtrCipher(cipher));
    assert.equal(isFastCtrCipher({}), false);
    // Sizes go up and down so the reused counter buffer is both grown and partly used.
    for (const [i, size] of [0, 1, 15, 16, 17, 160, 1200, 33, 0, 600].entries()) {
      const h = {
        payloadType: 96 + i,
        sequenceNumber: Math.floor(Math.random() * 0x10000),
        timestamp: Math.floor(Math.random() * 0x1_0000_0000),
        ssrc: Math.floor(Math.random() * 0x1_0000_0000),
        marker: i % 3 === 0,
      };
      const payload = randomBytes(size);
      const roc = i % 2 ? Math.floor(Math.random() * 0x1_0000_0000) : 0;
      const ref = referenceEncryptRtp(cipher, new RtpHeader(h), payload, roc);
      assert.ok(
        Buffer.compare(protectRtp(cipher, h, payload, roc), ref) === 0,
        `packet ${k}/${i} (${size} B)`,
      );
    }
  }
});

Deno.test("werift fast SRTP: protectRtpInto's batched key stream is werift's, across batches, a wrap, an SSRC change and large payloads", () => {
  applyWeriftFastSrtp();
  const { cipher } = session();
  const out = Buffer.alloc(1500);
  let ssrc = 0x1234_5678, seq = 0xffd0, roc = 7;
  // 120 consecutive packets (several batches of key stream, one sequence wrap), then the same indexes again
  // (a batch made before is not reused for another SSRC), with payloads that fit the batch and some that do not.
  for (let i = 0; i < 240; i++) {
    if (i === 120) {
      ssrc = 0x0bad_cafe;
      seq = 0xffd0;
      roc = 7;
    }
    const size = i % 17 === 5 ? 257 + (i % 300) : 20 + ((i * 13) % 237);
    const h = { payloadType: 111, sequenceNumber: seq, timestamp: i * 960, ssrc, marker: i === 0 };
    const payload = randomBytes(size);
    const ref = referenceEncryptRtp(cipher, new RtpHeader(h), payload, roc);
    const n = protectRtpInto(cipher, h, payload, roc, out);
    assert.ok(
      Buffer.compare(out.subarray(0, n), ref) === 0,
      `packet ${i} (seq ${seq}, roc ${roc}, ${size} B)`,
    );
    seq = (seq + 1) & 0xffff;
    if (seq === 0) roc++;
  }
});

Deno.test("werift fast SRTP: the fast decrypt returns what werift's returns, and a tampered packet still fails werift's way", () => {
  applyWeriftFastSrtp();
  const { tx, rx } = txRx();
  let seq = 0xfff0;
  for (let i = 0; i < 80; i++) {
    const size = i % 11 === 3 ? 300 : 40 + i;
    const header = new RtpHeader({
      payloadType: 111,
      sequenceNumber: seq,
      timestamp: i * 960,
      ssrc: 0x5151,
      marker: false,
    });
    const payload = randomBytes(size);
    const packet = tx.encrypt(payload, header);
    const plain = rx.decrypt(packet);
    assert.ok(Buffer.compare(plain.subarray(12), payload) === 0, `packet ${i} (${size} B)`);
    seq = (seq + 1) & 0xffff;
  }
  const header = new RtpHeader({
    payloadType: 111,
    sequenceNumber: seq,
    timestamp: 0,
    ssrc: 0x5151,
    marker: false,
  });
  const packet = Buffer.from(tx.encrypt(randomBytes(60), header));
  packet[20] ^= 1;
  assert.throws(() => rx.decrypt(packet), (e: Error) => e.name === "SrtpAuthenticationError");
});

Deno.test("werift fast SRTP: protectRtp with the rollover counter counted at each sequence wrap decrypts across the wrap", () => {
  applyWeriftFastSrtp();
  const { tx, rx } = txRx();
  const cipher = (tx as unknown as { localContext: { cipher: CipherAesCtrLike } }).localContext.cipher;
  // As ForwardListener counts it: 0 from the first packet, +1 each time the sequence number wraps to 0.
  let seq = 65530, roc = 0;
  for (let i = 0; i < 20; i++) {
    const payload = randomBytes(80);
    const h = { payloadType: 111, sequenceNumber: seq, timestamp: i * 960, ssrc: 7, marker: i === 0 };
    const plain = rx.decrypt(protectRtp(cipher, h, payload, roc));
    assert.ok(
      Buffer.compare(plain.subarray(plain.length - 80), payload) === 0,
      `packet ${i} (seq ${seq}, roc ${roc})`,
    );
    seq = (seq + 1) & 0xffff;
    if (seq === 0) roc++;
  }
  assert.equal(roc, 1);
});
