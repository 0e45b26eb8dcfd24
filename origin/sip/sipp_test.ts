/**
 * The UAS against SIPp (Debian `sip-tester`) as a real UAC, all on 127.0.0.1: scenarios live in
 * testdata/sipp/. Each test checks both sides: SIPp's exit code (every expected message arrived) and the
 * call records on our side (end reason, audio frames, digits, hold changes, ports released).
 */
import assert from "node:assert/strict";
import { EchoApp } from "./testdata/echo_app.ts";
import { runSipp, sippOk, startUas, waitFor } from "./testdata/harness.ts";

Deno.test("sipp: call with PCMA audio (pcap) and an RFC 4733 digit, caller hangs up", async () => {
  const app = new EchoApp();
  const uas = await startUas(app);
  try {
    sippOk(await runSipp("uac_basic.xml", uas.localPort));
    await waitFor(() => app.records[0]?.endReason !== undefined);
    const rec = app.records[0];
    assert.deepEqual(rec.endReason, "remote_hangup");
    assert.deepEqual(rec.call.codec, "PCMA");
    assert.ok(rec.framesIn > 50, `only ${rec.framesIn} audio frames arrived`);
    assert.ok(rec.energyIn > 0, "decoded audio is silent");
    assert.deepEqual(rec.digits, ["5"]);
    assert.ok(rec.call.rtp!.stats.packetsOut > 50, "no echo was sent");
    // onEnd runs before the release; the sockets close in the RTP worker, then the ports return.
    await waitFor(() => uas.ports.leased === 0, 2000);
  } finally {
    await uas.close();
  }
});

Deno.test("sipp: CANCEL before answer gets 200 and 487, the call ends as cancelled", async () => {
  const app = new EchoApp("ring-only");
  const uas = await startUas(app);
  try {
    sippOk(await runSipp("uac_cancel.xml", uas.localPort));
    assert.deepEqual(app.records.length, 1);
    assert.deepEqual(app.records[0].call.endReason, "cancelled");
    assert.deepEqual(uas.calls.length, 0);
  } finally {
    await uas.close();
  }
});

Deno.test("sipp: retransmitted INVITE (before and after 200) reaches the app once", async () => {
  const app = new EchoApp();
  const uas = await startUas(app);
  try {
    sippOk(await runSipp("uac_retransmit.xml", uas.localPort));
    await waitFor(() => app.records[0]?.endReason !== undefined);
    assert.deepEqual(app.records.length, 1);
    assert.deepEqual(app.records[0].endReason, "remote_hangup");
  } finally {
    await uas.close();
  }
});

Deno.test("sipp: hold (sendonly → recvonly, inactive) and unhold, no media timeout while held", async () => {
  const app = new EchoApp();
  const uas = await startUas(app, { mediaTimeoutMs: 1000 });
  try {
    sippOk(await runSipp("uac_hold.xml", uas.localPort));
    await waitFor(() => app.records[0]?.endReason !== undefined);
    const rec = app.records[0];
    assert.deepEqual(rec.endReason, "remote_hangup");
    assert.deepEqual(rec.holds, [true, false]);
  } finally {
    await uas.close();
  }
});

Deno.test("sipp: after release, in-dialog OPTIONS, re-INVITE and the retransmitted INVITE get 481", async () => {
  const app = new EchoApp();
  const uas = await startUas(app);
  try {
    sippOk(await runSipp("uac_481_after_release.xml", uas.localPort));
    assert.deepEqual(app.records.length, 1, "a released call was revived");
    assert.deepEqual(app.records[0].endReason, "remote_hangup");
    assert.deepEqual(uas.calls.length, 0);
  } finally {
    await uas.close();
  }
});

Deno.test("sipp: RTP never flows, Parley sends BYE after the media timeout", async () => {
  const app = new EchoApp();
  const uas = await startUas(app, { mediaTimeoutMs: 800 });
  try {
    const t0 = performance.now();
    sippOk(await runSipp("uac_media_timeout.xml", uas.localPort));
    await waitFor(() => app.records[0]?.endReason !== undefined);
    assert.deepEqual(app.records[0].endReason, "media_timeout");
    assert.ok(performance.now() - t0 >= 800);
    await waitFor(() => uas.ports.leased === 0, 2000);
  } finally {
    await uas.close();
  }
});

Deno.test("sipp over TCP: basic call and caller hangup", async () => {
  const app = new EchoApp();
  const uas = await startUas(app);
  try {
    sippOk(await runSipp("uac_churn.xml", uas.localPort, [], "t1"));
    await waitFor(() => app.records[0]?.endReason !== undefined);
    assert.deepEqual(app.records[0].endReason, "remote_hangup");
    assert.deepEqual(app.records[0].call.peer.transport, "tcp");
  } finally {
    await uas.close();
  }
});
