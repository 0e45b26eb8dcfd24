/** Unit tests for the pure pieces: jitter buffer, RFC 4733, RTCP, RTP, G.711, digest, SDP, allow-list. */
import assert from "node:assert/strict";
import { JitterBuffer } from "./jitter_buffer.ts";
import { DtmfDetector } from "./telephone_event.ts";
import { buildRtcp, parseRtcp } from "./rtcp.ts";
import { buildRtp, parseRtp, type RtpPacket } from "./rtp_packet.ts";
import { decodeG711, encodeG711 } from "./g711.ts";
import { computeHa1, DigestAuthenticator, digestResponse, parseAuthParams } from "./digest.ts";
import { negotiate, parseRemoteAudio } from "./sdp.ts";
import { isInAllowList } from "./allow_list.ts";
import { parseMessage, textToBytes } from "./message.ts";
import type { SipRequest } from "./sip_types.ts";

const pkt = (seq: number): RtpPacket => ({
  marker: false,
  payloadType: 0,
  sequence: seq & 0xffff,
  timestamp: seq * 160,
  ssrc: 1,
  payload: new Uint8Array([seq & 0xff]),
});

Deno.test("jitter buffer: reorders, drops late and duplicates, survives 16-bit wrap", () => {
  const jb = new JitterBuffer(3);
  const out: number[] = [];
  for (const s of [65533, 65535, 65534, 0, 2, 1, 65534, 1, 3]) {
    out.push(...jb.push(pkt(s)).map((p) => p.sequence));
  }
  assert.deepEqual(out, [65533, 65534, 65535, 0, 1, 2, 3]);
  assert.equal(jb.late, 2);
  const jb2 = new JitterBuffer(3);
  const o2: number[] = [];
  for (const s of [10, 12, 13, 14]) o2.push(...jb2.push(pkt(s)).map((p) => p.sequence));
  assert.deepEqual(o2, [10, 12, 13, 14]);
  assert.equal(jb2.lost, 1);
});

Deno.test("RFC 4733: one digit per event despite three end packets; lost end reported at next event", () => {
  const got: Array<[string, number]> = [];
  const d = new DtmfDetector((digit, ms) => got.push([digit, ms]));
  const ev = (e: number, end: boolean, dur: number) =>
    new Uint8Array([e, end ? 0x8a : 0x0a, dur >> 8, dur & 0xff]);
  d.push(1000, ev(5, false, 160));
  d.push(1000, ev(5, false, 320));
  for (let i = 0; i < 3; i++) d.push(1000, ev(5, true, 800));
  d.push(5000, ev(11, false, 160)); // '#', end packets lost
  d.push(9000, ev(0, true, 400));
  assert.deepEqual(got, [["5", 100], ["#", 20], ["0", 50]]);
});

Deno.test("RTCP: SR+SDES+BYE round trip; truncated and non-RTCP input rejected", () => {
  const b = buildRtcp({
    ssrc: 42,
    cname: "parley",
    sender: { ntpMs: Date.now(), rtpTimestamp: 1234, packets: 10, octets: 1600 },
    report: { ssrc: 7, fractionLost: 0, cumulativeLost: 3, highestSeq: 99, jitter: 0, lsr: 0, dlsr: 0 },
    bye: true,
  });
  const p = parseRtcp(b)!;
  assert.deepEqual(p.map((x) => x.type), ["sr", "sdes", "bye"]);
  assert.equal(p[0].type === "sr" && p[0].reports[0].cumulativeLost, 3);
  assert.equal(p[1].type === "sdes" && p[1].cname, "parley");
  assert.equal(parseRtcp(b.subarray(0, b.length - 3)), null);
  assert.equal(parseRtcp(new Uint8Array([1, 2, 3, 4, 5])), null);
  const rr = parseRtcp(buildRtcp({ ssrc: 1, cname: "x" }))!;
  assert.equal(rr[0].type, "rr");
});

Deno.test("RTP and G.711: round trip; junk is not RTP", () => {
  const pcm = Int16Array.from({ length: 160 }, (_, i) => Math.round(8000 * Math.sin(i / 5)));
  for (const pt of [0, 8] as const) {
    const dec = decodeG711(pt, encodeG711(pt, pcm));
    const err = pcm.reduce((m, v, i) => Math.max(m, Math.abs(v - dec[i])), 0);
    assert.ok(err < 300, `G.711 pt ${pt} error ${err}`);
  }
  const r = parseRtp(buildRtp({ ...pkt(7), payload: new Uint8Array(160) }))!;
  assert.equal(r.sequence, 7);
  assert.equal(r.payload.length, 160);
  assert.equal(parseRtp(new Uint8Array(11)), null);
  assert.equal(parseRtp(new Uint8Array(20).fill(0xff)), null);
});

Deno.test("SDP: codec choice follows the offer, hold detected from sendonly/inactive/0.0.0.0", () => {
  const sdp = (dir: string, ip = "10.0.0.1") =>
    `v=0\r\no=- 1 1 IN IP4 ${ip}\r\ns=-\r\nc=IN IP4 ${ip}\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=${dir}\r\n`;
  const n = negotiate(parseRemoteAudio(sdp("sendrecv")));
  assert.equal(n.payloadType, 8);
  assert.equal(n.dtmfPayloadType, 101);
  assert.equal(n.held, false);
  assert.equal(negotiate(parseRemoteAudio(sdp("sendonly"))).localDirection, "recvonly");
  assert.equal(negotiate(parseRemoteAudio(sdp("inactive"))).held, true);
  assert.equal(negotiate(parseRemoteAudio(sdp("sendrecv", "0.0.0.0"))).held, true);
  assert.throws(() => negotiate(parseRemoteAudio(sdp("sendrecv").replace("8 0 101", "18 101"))));
});

Deno.test("digest: MD5 and SHA-256 responses verify, a wrong password and a forged nonce do not", async () => {
  const auth = new DigestAuthenticator(
    "parley",
    (u) => Promise.resolve(u === "alice" ? { password: "s3cret" } : null),
  );
  const nonce = parseAuthParams(auth.challenge()[0][1])!.nonce;
  const req = (alg: "MD5" | "SHA-256", password: string, n = nonce): SipRequest => {
    const response = digestResponse({
      algorithm: alg,
      ha1: computeHa1(alg, "alice", "parley", password),
      nonce: n,
      method: "INVITE",
      uri: "sip:100@127.0.0.1",
      qop: "auth",
      nc: "00000001",
      cnonce: "abc",
    });
    const text =
      `INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\nFrom: <sip:alice@x>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: a\r\nCSeq: 1 INVITE\r\nAuthorization: Digest username="alice", realm="parley", nonce="${n}", uri="sip:100@127.0.0.1", response="${response}", algorithm=${alg}, qop=auth, nc=00000001, cnonce="abc"\r\nContent-Length: 0\r\n\r\n`;
    const r = parseMessage(textToBytes(text));
    assert.ok(r.ok);
    return r.message as SipRequest;
  };
  assert.deepEqual(await auth.verify(req("MD5", "s3cret")), { ok: true, username: "alice" });
  assert.deepEqual(await auth.verify(req("SHA-256", "s3cret")), { ok: true, username: "alice" });
  assert.equal((await auth.verify(req("SHA-256", "wrong"))).ok, false);
  assert.equal((await auth.verify(req("MD5", "s3cret", "123.forged"))).ok, false);
});

Deno.test("allow-list: exact addresses and CIDR prefixes", () => {
  assert.ok(isInAllowList("203.0.113.7", ["203.0.113.0/24"]));
  assert.ok(isInAllowList("127.0.0.1", ["127.0.0.1"]));
  assert.ok(!isInAllowList("203.0.114.7", ["203.0.113.0/24", "10.0.0.1"]));
  assert.ok(!isInAllowList("nonsense", ["0.0.0.0/33"]));
});
