/**
 * UAS behaviour driven by a raw UDP socket (a minimal UAC inside the test): OPTIONS, unknown methods, requests
 * for unknown dialogs, and a shutdown that does not wait on a peer that vanished mid-call.
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { EchoApp } from "./testdata/echo_app.ts";
import { startUas, waitFor } from "./testdata/harness.ts";

async function rawUac() {
  const sock = dgram.createSocket("udp4");
  const got: string[] = [];
  sock.on("message", (m) => got.push(new TextDecoder().decode(m)));
  await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
  const port = sock.address().port;
  const request = (method: string, uasPort: number, extra: string[] = [], body = "", toTag = "") => {
    const lines = [
      `${method} sip:100@127.0.0.1:${uasPort} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-${method}-${crypto.randomUUID()}`,
      `From: <sip:raw@127.0.0.1:${port}>;tag=raw1`,
      `To: <sip:100@127.0.0.1>${toTag ? `;tag=${toTag}` : ""}`,
      "Call-ID: raw-call-1",
      `CSeq: ${method === "ACK" ? 1 : 1} ${method}`,
      `Contact: <sip:raw@127.0.0.1:${port}>`,
      "Max-Forwards: 70",
      ...extra,
      `Content-Length: ${body.length}`,
      "",
      body,
    ];
    sock.send(new TextEncoder().encode(lines.join("\r\n")), uasPort, "127.0.0.1");
  };
  return { sock, got, port, request };
}

Deno.test("uas: OPTIONS gets 200 with Allow; unknown method 501; BYE for an unknown dialog 481", async () => {
  const uas = await startUas(new EchoApp());
  const uac = await rawUac();
  try {
    uac.request("OPTIONS", uas.localPort);
    await waitFor(() => uac.got.length === 1);
    assert.match(uac.got[0], /^SIP\/2\.0 200 /);
    assert.match(uac.got[0], /\r\nAllow: INVITE, ACK, BYE, CANCEL, OPTIONS/);
    uac.request("FROBNICATE", uas.localPort);
    await waitFor(() => uac.got.length === 2);
    assert.match(uac.got[1], /^SIP\/2\.0 501 /);
    uac.request("BYE", uas.localPort, [], "", "nosuchdialog");
    await waitFor(() => uac.got.length === 3);
    assert.match(uac.got[2], /^SIP\/2\.0 481 /);
  } finally {
    uac.sock.close();
    await uas.close();
  }
});

Deno.test("uas: shutdown with a peer that vanished mid-call ends within the grace period and frees ports", async () => {
  const app = new EchoApp();
  const uas = await startUas(app, { timers: { t1: 500, t2: 4000, t4: 5000 }, shutdownGraceMs: 1000 });
  const uac = await rawUac();
  const sdp =
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n";
  uac.request("INVITE", uas.localPort, ["Content-Type: application/sdp"], sdp);
  await waitFor(() => uac.got.some((m) => m.startsWith("SIP/2.0 200")));
  const toTag = uac.got.find((m) => m.startsWith("SIP/2.0 200"))!.match(/\r\nTo: [^\r]*;tag=([^;\r]+)/)![1];
  uac.request("ACK", uas.localPort, [], "", toTag);
  await waitFor(() => app.records[0]?.call.state === "confirmed");
  uac.sock.close(); // the phone is gone: our BYE will never be answered
  const t0 = performance.now();
  await uas.close();
  const took = performance.now() - t0;
  assert.ok(took < 2500, `shutdown took ${took} ms`);
  assert.equal(app.records[0].endReason, "shutdown");
  assert.equal(uas.ports.leased, 0);
});
