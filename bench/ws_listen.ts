/**
 * WebSocket streams vs WebRTC sessions at the same load, through a real `main.ts all` process
 * (ASR_ENGINE=ctc): N concurrent `/v1/listen` streams, then N concurrent WebRTC sessions, each sending the same
 * espeak WAV in real time followed by silence. Compares the confirmed-result latency p50/p95 (the event's
 * `latency_ms`: the audio that produced it reaching the origin → event sent, defined identically for both
 * transports) and prints the load average before and after.
 *
 *   deno run -A --unstable-worker-options bench/ws_listen.ts [--streams 20] [--rounds 1]
 */
import { TestClient } from "../origin/session/test_client.ts";
import { floatToInt16, resampleAll } from "../lib/audio/resampler.ts";
import type { TranscriptEvent } from "../protocol/session_messages.ts";
import { listen, streamSilence, streamWav } from "../tests/listen_client.ts";
import { startProcessStack } from "../tests/web/stack.ts";
import { exitCleanly } from "../origin/session/wrtc.ts";

const args = Deno.args;
const arg = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const N = Number(arg("streams", "20"));
const WAV = Deno.readFileSync(new URL("../tests/fixtures/speech/two_phrases_16k.wav", import.meta.url));
const wavMs = (WAV.length - 44) / 2 / 16;
/** The fixture holds two phrases separated by a pause. */
const PHRASES = 2;

const pct = (xs: number[], p: number) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
const loadavg = () => Deno.loadavg().map((x) => x.toFixed(1)).join(" ");

const stack = await startProcessStack({
  ASR_ENGINE: "ctc",
  NODE_CAPACITY: String(2 * N + 5),
  // A loaded recognizer can take longer than the default 15 s to confirm; no session may be cut while waiting.
  MEDIA_TIMEOUT_MS: "120000",
}, {
  readyMs: 400_000,
});
const auth = { authorization: `Bearer ${stack.adminKey}` };
const results: Record<string, { latency: number[]; confirmed: number; failed: number }> = {};
const load: Record<string, string> = {};

async function wsStream(): Promise<number[]> {
  const c = listen(`${stack.url.replace("http", "ws")}/v1/listen?sample_rate=16000`, { headers: auth });
  await c.waitFor((e) => e.type === "state" && e.state === "active", 120_000, "active");
  await streamWav(c.ws, WAV, { frameMs: 20 });
  await streamSilence(c.ws, 16000, 2500);
  // Both phrases confirmed (or give up): only then hang up, so a loaded recognizer is measured, not cut off.
  await c.waitFor(
    () => c.events.filter((e) => e.type === "transcript" && e.status === "confirmed").length >= PHRASES,
    120_000,
    "confirmed",
  ).catch(() => {});
  c.ws.send(JSON.stringify({ type: "bye" }));
  await c.closed;
  return c.events.filter((e): e is TranscriptEvent => e.type === "transcript" && e.status === "confirmed")
    .map((e) => e.latency_ms);
}

async function rtcSession(pcm48k: Int16Array): Promise<number[]> {
  const client = new TestClient({ audio: "off", pcm48k });
  try {
    const sdp = await client.offer();
    const res = await fetch(`${stack.url}/v1/sessions`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ sdp, options: {} }),
    });
    if (res.status !== 201) throw new Error(`POST /v1/sessions ${res.status}: ${await res.text()}`);
    const { sdp: answer } = await res.json() as { sdp: string };
    await client.accept(answer);
    await client.waitForEvent("state", (e) => e.state === "active", 120_000);
    client.audio = "pcm";
    await new Promise((r) => setTimeout(r, wavMs + 2500));
    await client.waitFor(
      () =>
        client.received.filter((e) => e.type === "transcript" && e.status === "confirmed").length >= PHRASES,
      120_000,
      "confirmed",
    ).catch(() => {});
    if (client.control.readyState === "open") {
      client.send({ type: "bye" });
      await client.waitForEvent("bye", () => true, 30_000).catch(() => {});
    }
    const bye = client.received.find((e) => e.type === "bye");
    if (bye?.type === "bye" && bye.reason !== "client_hangup") console.error("webrtc session ended:", bye);
    return client.received.filter((e): e is TranscriptEvent =>
      e.type === "transcript" && e.status === "confirmed"
    ).map((e) => e.latency_ms);
  } finally {
    client.close();
  }
}

async function phase(name: string, run: () => Promise<number[]>): Promise<void> {
  load[`${name} before`] = loadavg();
  const out = await Promise.allSettled(Array.from({ length: N }, () => run()));
  load[`${name} after`] = loadavg();
  const latency = out.flatMap((r) => r.status === "fulfilled" ? r.value : []);
  const failed = out.filter((r) => r.status === "rejected");
  for (const f of failed.slice(0, 3)) console.error(name, (f as PromiseRejectedResult).reason);
  results[name] = { latency, confirmed: latency.length, failed: failed.length };
}

try {
  const pcm48k = floatToInt16(resampleAll(
    new Int16Array(WAV.buffer.slice(44, WAV.length - ((WAV.length - 44) % 2))),
    16000,
    48000,
  ));
  await phase("websocket", wsStream);
  await phase("webrtc", () => rtcSession(pcm48k));
  console.log(`\n${N} concurrent streams, ${(wavMs / 1000).toFixed(1)} s of espeak speech each + silence\n`);
  console.log("transport   confirmed  failed  latency_ms p50  p95");
  for (const [name, r] of Object.entries(results)) {
    console.log(
      `${name.padEnd(11)} ${String(r.confirmed).padStart(9)}  ${String(r.failed).padStart(6)}  ${
        pct(r.latency, 0.5).toFixed(0).padStart(14)
      }  ${pct(r.latency, 0.95).toFixed(0)}`,
    );
  }
  const ws = pct(results.websocket.latency, 0.5), rtc = pct(results.webrtc.latency, 0.5);
  console.log(`\nwebsocket p50 ÷ webrtc p50 = ${(ws / rtc).toFixed(2)} (goal ≤ 1.10)`);
  console.log("load average (1/5/15 min):", JSON.stringify(load));
} finally {
  await exitCleanly(async () => {
    await stack.close();
  }, 0);
}
