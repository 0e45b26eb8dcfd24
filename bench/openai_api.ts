/**
 * The OpenAI-compatible API against a real `main.ts all` process (PGlite, ASR_ENGINE=ctc), through the official
 * `openai` client:
 *   1. POST /v1/audio/transcriptions of a 60 s WAV (espeak-ng reading held-out sentences): wall time and
 *      real-time factor (wall ÷ audio), median of 3;
 *   2. POST /v1/audio/speech, 50-character input, MP3: time to the first audio bytes, p50/p90 of 20, idle;
 *   3. the same with 8 long TTS jobs (batch priority, ~20k characters each) running on the same origin
 *      (goal: p50 ≤ 2× idle).
 *
 *   deno run -A --unstable-worker-options bench/openai_api.ts
 */
import OpenAI, { toFile } from "openai";
import { startProcessStack } from "../tests/web/stack.ts";

const loadavg = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
const q = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];

async function sixtySeconds(): Promise<Uint8Array> {
  const manifest = await Deno.readTextFile(new URL("../models/eval/manifest.tsv", import.meta.url));
  const texts = manifest.trim().split("\n").slice(1).map((l) => l.split("\t")[2]);
  const dir = await Deno.makeTempDir({ prefix: "parley-bench-oai-" });
  try {
    // sentences with pauses until 60 s: sox pads/trims to exactly 60 s
    const text = texts.slice(0, 40).join(". ");
    await new Deno.Command("espeak-ng", { args: ["-v", "en-us", "-g", "8", "-w", `${dir}/a.wav`, text] })
      .output();
    const st = await new Deno.Command("sox", {
      args: [`${dir}/a.wav`, `${dir}/b.wav`, "pad", "0", "60", "trim", "0", "60"],
    })
      .output();
    if (st.code !== 0) throw new Error(new TextDecoder().decode(st.stderr));
    return await Deno.readFile(`${dir}/b.wav`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function firstByte(client: OpenAI, input: string): Promise<number> {
  const t0 = performance.now();
  const res = await client.audio.speech.create({
    model: "tts-1",
    voice: "alloy",
    input,
    response_format: "mp3",
  });
  const reader = res.body!.getReader();
  const first = await reader.read();
  const ms = performance.now() - t0;
  if (first.done) throw new Error("no audio");
  while (!(await reader.read()).done) { /* drain */ }
  return ms;
}

const stack = await startProcessStack(
  { ASR_ENGINE: "ctc", RATE_LIMIT_RPS: "1000", RATE_LIMIT_BURST: "1000" },
  { readyMs: 400_000 },
);
try {
  const client = new OpenAI({ apiKey: stack.adminKey, baseURL: `${stack.url}/v1`, maxRetries: 0 });
  const wav = await sixtySeconds();
  console.log(`load average before: ${loadavg()}`);

  const walls: number[] = [];
  let words = 0;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const r = await client.audio.transcriptions.create({
      file: await toFile(wav, "a.wav"),
      model: "whisper-1",
    });
    walls.push(performance.now() - t0);
    words = r.text.split(/\s+/).filter(Boolean).length;
  }
  const wall = q(walls, 0.5);
  console.log(
    `transcription, 60 s WAV, ctc: wall median ${(wall / 1000).toFixed(2)} s (runs ${
      walls.map((w) => (w / 1000).toFixed(2)).join(", ")
    }), RTF ${(wall / 60_000).toFixed(3)}, ${words} words; load ${loadavg()}`,
  );

  const INPUT = "The quick brown fox jumps over the lazy dog, twice."; // 50 characters
  for (let i = 0; i < 3; i++) await firstByte(client, INPUT); // warm up
  const idle: number[] = [];
  for (let i = 0; i < 20; i++) idle.push(await firstByte(client, INPUT));
  console.log(
    `speech first byte, 50 chars, idle: p50 ${q(idle, 0.5).toFixed(1)} ms, p90 ${
      q(idle, 0.9).toFixed(1)
    } ms; load ${loadavg()}`,
  );

  const long = ("This sentence belongs to a long job that keeps the synthesis slots busy. ").repeat(270);
  const jobs: string[] = [];
  for (let i = 0; i < 8; i++) {
    const r = await fetch(`${stack.url}/v1/tts/jobs`, {
      method: "POST",
      headers: { authorization: `Bearer ${stack.adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ text: long, priority: "batch" }),
    });
    jobs.push((await r.json()).id);
  }
  await new Promise((r) => setTimeout(r, 2000));
  const loaded: number[] = [];
  for (let i = 0; i < 20; i++) loaded.push(await firstByte(client, INPUT));
  const running = await (await fetch(`${stack.url}/v1/tts/jobs?status=running`, {
    headers: { authorization: `Bearer ${stack.adminKey}` },
  })).json();
  console.log(
    `speech first byte, 50 chars, 8 long jobs (${running.jobs.length} still running at the end): p50 ${
      q(loaded, 0.5).toFixed(1)
    } ms, p90 ${q(loaded, 0.9).toFixed(1)} ms, p50 ratio ${
      (q(loaded, 0.5) / q(idle, 0.5)).toFixed(2)
    }; load ${loadavg()}`,
  );
  for (const id of jobs) {
    await (await fetch(`${stack.url}/v1/tts/jobs/${id}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${stack.adminKey}` },
    })).body?.cancel();
  }
} finally {
  await stack.close();
}
