/**
 * The UAS against baresip (Debian's softphone) on 127.0.0.1: baresip dials the echo app, speaks a WAV
 * (espeak-ng → sox 8 kHz), sends DTMF, holds and resumes; we check the digits and hold changes arrived, that
 * baresip's recording of what it heard carries our echo (energy and duration), and both hang-up directions.
 */
import assert from "node:assert/strict";
import { EchoApp } from "./testdata/echo_app.ts";
import { startUas, waitFor } from "./testdata/harness.ts";
import { Baresip, rms, wavSamples } from "./testdata/baresip.ts";

const wavDirs: string[] = [];
globalThis.addEventListener("unload", () => {
  for (const d of wavDirs) Deno.removeSync(d, { recursive: true });
});

async function speechWav(): Promise<string> {
  const dir = Deno.makeTempDirSync({ prefix: "sipwav-" });
  wavDirs.push(dir);
  const raw = `${dir}/raw.wav`;
  const wav = `${dir}/in.wav`;
  const say = await new Deno.Command("espeak-ng", {
    args: ["-w", raw, "hello parley, this is a telephone test of the echo path, one two three four five"],
  }).output();
  assert.equal(say.code, 0);
  const conv = await new Deno.Command("sox", { args: [raw, "-r", "8000", "-c", "1", "-b", "16", wav] })
    .output();
  assert.equal(conv.code, 0);
  return wav;
}

Deno.test("baresip: calls, hears its own speech echoed, DTMF digits and hold/resume arrive, baresip hangs up", async () => {
  const wav = await speechWav();
  const micRms = rms(wavSamples(Deno.readFileSync(wav)));
  const app = new EchoApp();
  const uas = await startUas(app, { mediaTimeoutMs: 5000 });
  const phone = new Baresip(wav);
  try {
    await phone.start();
    await phone.command("dial", `sip:100@127.0.0.1:${uas.localPort}`);
    await phone.waitEvent("CALL_ESTABLISHED");
    await new Promise((r) => setTimeout(r, 2500));
    await phone.command("sndcode", "1");
    await new Promise((r) => setTimeout(r, 400));
    await phone.command("sndcode", "2");
    await new Promise((r) => setTimeout(r, 400));
    await phone.command("sndcode", "#");
    await new Promise((r) => setTimeout(r, 600));
    await phone.command("hold");
    await waitFor(() => app.records[0]?.holds.length === 1, 3000);
    await phone.command("resume");
    await waitFor(() => app.records[0]?.holds.length === 2, 3000);
    await new Promise((r) => setTimeout(r, 500));
    const t0 = performance.now();
    await phone.command("hangup");
    await waitFor(() => app.records[0]?.endReason !== undefined, 2000);
    const released = performance.now() - t0;
    const rec = app.records[0];
    assert.equal(rec.endReason, "remote_hangup");
    assert.deepEqual(rec.digits, ["1", "2", "#"]);
    assert.deepEqual(rec.holds, [true, false]);
    assert.ok(rec.framesIn > 100, `only ${rec.framesIn} frames from baresip`);
    await waitFor(() => uas.ports.leased === 0, 2000);
    await phone.stop();
    const heard = phone.recording();
    const heardRms = rms(heard);
    console.log("baresip echo", {
      framesIn: rec.framesIn,
      micRms,
      heardRms,
      heardSeconds: heard.length / 8000,
      released,
    });
    assert.ok(heard.length > 8000 * 2, "baresip recorded under 2 s");
    // G.711 twice and the phone's own processing: the echo keeps most of the speech energy.
    assert.ok(heardRms > micRms * 0.2, `echo too quiet: ${heardRms} vs mic ${micRms}`);
  } finally {
    await phone.close();
    await uas.close();
  }
});

Deno.test("baresip: Parley hangs up, baresip sees the call closed within 2 s", async () => {
  const wav = await speechWav();
  const app = new EchoApp();
  const uas = await startUas(app);
  const phone = new Baresip(wav);
  try {
    await phone.start();
    await phone.command("dial", `sip:100@127.0.0.1:${uas.localPort}`);
    await phone.waitEvent("CALL_ESTABLISHED");
    await new Promise((r) => setTimeout(r, 500));
    const t0 = performance.now();
    await app.records[0].call.hangup();
    await phone.waitEvent("CALL_CLOSED", 2000);
    const elapsed = performance.now() - t0;
    assert.equal(app.records[0].endReason, "local_hangup");
    assert.ok(elapsed < 2000);
    assert.equal(uas.ports.leased, 0);
  } finally {
    await phone.close();
    await uas.close();
  }
});
