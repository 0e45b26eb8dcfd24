/**
 * The offer rewriting behind a room's audio profile (opus_profile.ts): parameters set or replaced in the opus
 * fmtp of audio sections only, `a=ptime`/`a=maxptime` replaced, other lines and line endings kept.
 */
import assert from "node:assert/strict";
import { FANOUT_OPUS, opusParamsOf, shapeOpusOffer } from "./opus_profile.ts";

const OFFER = [
  "v=0",
  "o=- 1 2 IN IP4 127.0.0.1",
  "s=-",
  "t=0 0",
  "a=group:BUNDLE 0 1",
  "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8",
  "c=IN IP4 0.0.0.0",
  "a=mid:0",
  "a=recvonly",
  "a=rtpmap:111 opus/48000/2",
  "a=rtcp-fb:111 transport-cc",
  "a=fmtp:111 minptime=10;useinbandfec=1",
  "a=rtpmap:63 red/48000/2",
  "a=fmtp:63 111/111",
  "a=rtpmap:9 G722/8000",
  "a=ptime:20",
  "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
  "c=IN IP4 0.0.0.0",
  "a=mid:1",
  "a=fmtp:111 should-not-change",
  "",
].join("\r\n");

Deno.test("shapeOpusOffer: fanout params replace the opus fmtp and ptime of the audio section only", () => {
  const out = shapeOpusOffer(OFFER, FANOUT_OPUS);
  const lines = out.split("\r\n");
  assert.ok(!out.includes("\n\n") && out.endsWith("\r\n"), "CRLF kept, trailing newline kept");
  const fmtp = lines.filter((l) => l.startsWith("a=fmtp:111 "));
  assert.equal(fmtp.length, 2);
  assert.equal(
    fmtp[0],
    "a=fmtp:111 minptime=10;useinbandfec=0;maxaveragebitrate=96000;stereo=0;usedtx=0",
  );
  assert.equal(fmtp[1], "a=fmtp:111 should-not-change", "the application section is untouched");
  assert.deepEqual(lines.filter((l) => l.startsWith("a=ptime:")), ["a=ptime:60"]);
  assert.deepEqual(lines.filter((l) => l.startsWith("a=maxptime:")), ["a=maxptime:60"]);
  // The new attributes stay inside the audio section (before the next m= line).
  const audioEnd = lines.findIndex((l) => l.startsWith("m=application"));
  assert.ok(lines.indexOf("a=ptime:60") < audioEnd && lines.indexOf("a=maxptime:60") < audioEnd);
  assert.ok(lines.includes("a=fmtp:63 111/111"), "other payloads' fmtp kept");
  assert.equal(lines.length, OFFER.split("\r\n").length + 1, "one line added (maxptime), none lost");
});

Deno.test("shapeOpusOffer: adds an fmtp line when the offer has none; LF offers stay LF", () => {
  const offer = "v=0\nm=audio 9 UDP/TLS/RTP/SAVPF 111\na=rtpmap:111 opus/48000/2\na=mid:0\n";
  const out = shapeOpusOffer(offer, { maxplaybackrate: 16_000 });
  assert.equal(
    out,
    "v=0\nm=audio 9 UDP/TLS/RTP/SAVPF 111\na=rtpmap:111 opus/48000/2\na=fmtp:111 maxplaybackrate=16000\na=mid:0\n",
  );
});

Deno.test("shapeOpusOffer: no opus, nothing changes; profiles map to params", () => {
  const offer = "v=0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n";
  assert.equal(shapeOpusOffer(offer, FANOUT_OPUS), offer);
  assert.equal(opusParamsOf("full"), undefined);
  assert.equal(opusParamsOf("fanout"), FANOUT_OPUS);
});
