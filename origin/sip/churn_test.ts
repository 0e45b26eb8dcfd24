/**
 * Churn: 200 SIPp calls set up and torn down (20 concurrent, with RTP negotiated and the paced sender
 * running). Afterwards no RTP port is leased or bound, no dialog or transaction is left, and the process's
 * fd and thread counts are back where they were.
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { EchoApp } from "./testdata/echo_app.ts";
import { countFds, countThreads, runSipp, startUas, waitFor } from "./testdata/harness.ts";

Deno.test("churn: 200 calls, ports released, fds and threads flat", async () => {
  const app = new EchoApp();
  const uas = await startUas(app);
  try {
    // Warm-up call so lazily created runtime resources are not counted as a leak.
    assert.equal((await runSipp("uac_churn.xml", uas.localPort)).code, 0);
    await waitFor(() => uas.calls.length === 0 && uas.ports.leased === 0);
    const fds0 = countFds();
    const threads0 = countThreads();
    const r = await runSipp("uac_churn.xml", uas.localPort, ["-m", "200", "-l", "20", "-r", "40"]);
    assert.equal(r.code, 0, r.stdout.slice(-3000));
    await waitFor(() => app.records.filter((x) => x.endReason).length === 201, 20_000);
    await waitFor(() => uas.ports.leased === 0 && uas.calls.length === 0, 5000);
    const fds1 = countFds();
    const threads1 = countThreads();
    console.log("churn", { calls: app.records.length, fds0, fds1, threads0, threads1 });
    assert.ok(app.records.every((x) => x.endReason === "remote_hangup"));
    assert.ok(fds1 <= fds0 + 2, `fds ${fds0} → ${fds1}`);
    assert.ok(threads1 <= threads0 + 2, `threads ${threads0} → ${threads1}`);
    // Every port of the range can be bound again: nothing is left bound.
    const { rtpPortMin } = { rtpPortMin: uas.ports.min };
    for (let p = rtpPortMin; p < rtpPortMin + 40; p++) {
      const s = dgram.createSocket("udp4");
      await new Promise<void>((res, rej) => {
        s.once("error", rej);
        s.bind(p, "127.0.0.1", () => res());
      });
      await new Promise<void>((res) => s.close(() => res()));
    }
  } finally {
    await uas.close();
  }
});
