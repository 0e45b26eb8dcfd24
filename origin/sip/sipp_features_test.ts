/**
 * SIPp against the UAS for access control, session timers, offerless INVITE and Parley-side hang-ups
 * (a local hangup and a UAS shutdown both reach the caller as a BYE it answers).
 */
import assert from "node:assert/strict";
import { EchoApp } from "./testdata/echo_app.ts";
import { runSipp, sippOk, startUas, waitFor } from "./testdata/harness.ts";

Deno.test("sipp: digest challenge (401), then an authenticated call", async () => {
  const app = new EchoApp();
  const uas = await startUas(app, {
    allowAnyone: false,
    trunks: ["10.9.9.9"],
    // SIPp 3.6 answers the first challenge only and computes MD5 only; SHA-256 is covered in units_test.ts.
    digestAlgorithms: ["MD5"],
    credentials: (user) => Promise.resolve(user === "alice" ? { password: "s3cret" } : null),
  });
  try {
    sippOk(await runSipp("uac_auth.xml", uas.localPort, ["-au", "alice", "-ap", "s3cret"]));
    await waitFor(() => app.records[0]?.endReason !== undefined);
    assert.equal(app.records.length, 1);
    assert.equal(app.records[0].call.authenticatedUser, "alice");
    // A wrong password never reaches the app: the authenticated INVITE gets 401 again.
    sippOk(await runSipp("uac_auth_wrong.xml", uas.localPort, ["-au", "alice", "-ap", "wrong"]));
    assert.equal(app.records.length, 1);
  } finally {
    await uas.close();
  }
});

Deno.test("sipp: a caller outside the trunk allow-list, with no credentials configured, gets 403", async () => {
  const app = new EchoApp();
  const uas = await startUas(app, { allowAnyone: false, trunks: ["10.9.9.0/24"] });
  try {
    sippOk(await runSipp("uac_forbidden.xml", uas.localPort));
    assert.equal(app.records.length, 0);
  } finally {
    await uas.close();
  }
  const allowed = await startUas(app, { allowAnyone: false, trunks: ["127.0.0.0/8"] });
  try {
    sippOk(await runSipp("uac_churn.xml", allowed.localPort));
    assert.equal(app.records.length, 1);
  } finally {
    await allowed.close();
  }
});

Deno.test("sipp: Session-Expires honoured (Require: timer), the call ends when the UAC stops refreshing", async () => {
  const app = new EchoApp();
  const uas = await startUas(app, { minSessionExpires: 2 });
  try {
    sippOk(await runSipp("uac_session_timer.xml", uas.localPort));
    await waitFor(() => app.records[0]?.endReason !== undefined);
    assert.equal(app.records[0].endReason, "session_expired");
  } finally {
    await uas.close();
  }
});

Deno.test("sipp: when the UAC asks us to refresh, we send UPDATE every half interval and the call lives on", async () => {
  const app = new EchoApp();
  const uas = await startUas(app, { minSessionExpires: 2 });
  try {
    sippOk(await runSipp("uac_session_refresh_uas.xml", uas.localPort));
    await waitFor(() => app.records[0]?.endReason !== undefined);
    assert.equal(app.records[0].endReason, "remote_hangup");
  } finally {
    await uas.close();
  }
});

Deno.test("sipp: Session-Expires below Min-SE gets 422 with Min-SE", async () => {
  const app = new EchoApp();
  const uas = await startUas(app);
  try {
    sippOk(await runSipp("uac_session_422.xml", uas.localPort));
    assert.equal(app.records.length, 0);
  } finally {
    await uas.close();
  }
});

Deno.test("sipp: offerless INVITE — our offer in the 200, the answer in the ACK, then media and DTMF flow", async () => {
  const app = new EchoApp();
  const uas = await startUas(app);
  try {
    sippOk(await runSipp("uac_offerless.xml", uas.localPort));
    await waitFor(() => app.records[0]?.endReason !== undefined);
    const rec = app.records[0];
    assert.equal(rec.endReason, "remote_hangup");
    assert.equal(rec.call.codec, "PCMU");
    assert.deepEqual(rec.digits, ["7"]);
  } finally {
    await uas.close();
  }
});

Deno.test("sipp: Parley hangs up (BYE to the caller) and a UAS shutdown BYEs every call", async () => {
  const app = new EchoApp();
  const uas = await startUas(app);
  try {
    const first = runSipp("uac_wait_bye.xml", uas.localPort);
    await waitFor(() => app.records[0]?.call.state === "confirmed");
    const t0 = performance.now();
    await app.records[0].call.hangup();
    sippOk(await first);
    assert.ok(performance.now() - t0 < 2000);
    assert.equal(app.records[0].endReason, "local_hangup");
    const calls = [runSipp("uac_wait_bye.xml", uas.localPort), runSipp("uac_wait_bye.xml", uas.localPort)];
    await waitFor(() => app.records.filter((r) => r.call.state === "confirmed").length === 2);
    await uas.close();
    for (const c of calls) sippOk(await c);
    assert.deepEqual(app.records.slice(1).map((r) => r.endReason), ["shutdown", "shutdown"]);
    assert.equal(uas.ports.leased, 0);
  } finally {
    await uas.close();
  }
});
