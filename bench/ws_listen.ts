/**
 * WebSocket streams vs WebRTC sessions at the same load, through a real `main.ts all` process
 * (ASR_ENGINE=ctc): after an uncounted warm-up (one of each), N concurrent `/v1/listen` streams, then N
 * concurrent WebRTC sessions (rounds alternate which goes first, so neither is always the colder one and a shared
 * machine's load drift hits both), each sending the same espeak WAV in real time followed
 * by silence. Compares the confirmed-result latency p50/p95 side by side (the event's `latency_ms`: the audio
 * that produced it reaching the origin → event sent, defined identically for both transports) and prints the
 * load average around each phase.
 *
 *   deno task bench ws_listen [--streams 20] [--rounds 1] [--verbose]
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
const ROUNDS = Number(arg("rounds", "1"));
/** Print every confirmed latency of every phase. */
const VERBOSE = args.includes("--verbose");
if (!(N >= 1 && ROUNDS >= 1)) throw new Error("--streams and --rounds must be ≥ 1");
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
const results: Record<string, { latency: number[]; confirmed: number; failed: number; streams: number }> = {
  websocket: { latency: [], confirmed: 0, failed: 0, streams: 0 },
  webrtc: { latency: [], confirmed: 0, failed: 0, streams: 0 },
};
const load: string[] = [];

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
  // Silence from the first frame, as a microphone would send (and as the session tests do); the speech
  // starts once the session is active, like the WebSocket side's.
  const client = new TestClient({ audio: "silence" });
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
    client.play(pcm48k);
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

async function phase(
  name: "websocket" | "webrtc",
  round: number,
  run: () => Promise<number[]>,
): Promise<void> {
  const before = loadavg();
  const out = await Promise.allSettled(Array.from({ length: N }, () => run()));
  load.push(`round ${round} ${name}: ${before} → ${loadavg()}`);
  if (VERBOSE) {
    const lat = out.map((r) => r.status === "fulfilled" ? r.value.join(",") : "failed");
    console.log(`round ${round} ${name}: confirmed latency_ms per stream: ${lat.join(" | ")}`);
  }
  const latency = out.flatMap((r) => r.status === "fulfilled" ? r.value : []);
  const failed = out.filter((r) => r.status === "rejected");
  for (const f of failed.slice(0, 3)) console.error(name, (f as PromiseRejectedResult).reason);
  const r = results[name];
  r.latency.push(...latency);
  r.confirmed += latency.length;
  r.failed += failed.length;
  r.streams += N;
}

try {
  const pcm48k = floatToInt16(resampleAll(
    new Int16Array(WAV.buffer.slice(44, WAV.length - ((WAV.length - 44) % 2))),
    16000,
    48000,
  ));
  // Warm-up, not counted: the first sessions of a process pay for lazily built inference sessions and JIT,
  // which would bias whichever transport runs first.
  await Promise.allSettled([wsStream(), rtcSession(pcm48k)]);
  for (let round = 1; round <= ROUNDS; round++) {
    // The order alternates so neither transport always runs first in a round.
    const ws = () => phase("websocket", round, wsStream);
    const rtc = () => phase("webrtc", round, () => rtcSession(pcm48k));
    if (round % 2) {
      await ws();
      await rtc();
    } else {
      await rtc();
      await ws();
    }
  }
  console.log(
    `\n${N} concurrent streams per phase, ${ROUNDS} round(s), ${
      (wavMs / 1000).toFixed(1)
    } s of espeak speech (${PHRASES} phrases) each + silence\n`,
  );
  console.log("transport   streams  confirmed/expected  failed  latency_ms p50     p95");
  for (const [name, r] of Object.entries(results)) {
    console.log(
      `${name.padEnd(11)} ${String(r.streams).padStart(7)}  ${
        `${r.confirmed}/${r.streams * PHRASES}`.padStart(18)
      }  ${String(r.failed).padStart(6)}  ${pct(r.latency, 0.5).toFixed(0).padStart(14)}  ${
        pct(r.latency, 0.95).toFixed(0).padStart(6)
      }`,
    );
  }
  const ws = pct(results.websocket.latency, 0.5), rtc = pct(results.webrtc.latency, 0.5);
  console.log(`\nwebsocket p50 ÷ webrtc p50 = ${(ws / rtc).toFixed(2)} (goal ≤ 1.10)`);
  console.log("load average (1/5/15 min) before → after each phase:");
  for (const l of load) console.log(`  ${l}`);
  if (!Number.isFinite(ws) || !Number.isFinite(rtc)) {
    console.error("one side produced no confirmed results: no comparison");
    Deno.exitCode = 1;
  }
} finally {
  await exitCleanly(async () => {
    await stack.close();
  }, Deno.exitCode);
}
