/**
 * `deno task bench [name…] [--flag value…]` or `[-- args…]`: runs the named benchmarks (default: all that need no extra setup), each in its own
 * process (wrtc and worker pools stay isolated), and prints their output. Benchmarks that need PostgreSQL read
 * DATABASE_URL or PARLEY_TEST_DATABASE_URL (start one with `bash .ci/pg.sh start`).
 */
const BENCHES: Record<
  string,
  { file: string; args?: string[]; denoFlags?: string[]; needsPg?: boolean; what: string }
> = {
  churn: {
    file: "churn.ts",
    what: "1000 WebRTC sessions connect → 1 s audio → close: threads, fds, RSS, setup latency",
  },
  edge_setup: {
    file: "edge_setup.ts",
    what: "session setup latency through edge + origin processes (POST → answer), churn through the edge",
  },
  pacing: { file: "pacing.ts", what: "outbound 10 ms frame pacing with 20 sessions" },
  rooms: {
    file: "rooms.ts",
    what:
      "listeners per origin in one room (50…500; --variants full,shared@2,…): CPU, publisher pacing p99, listener receive gap p99",
  },
  room_opus_cost: {
    file: "room_opus_cost.ts",
    what: "one room listener's Opus encoder: CPU per audio second for each offer setting (full, fanout, …)",
  },
  rooms_fanout: {
    file: "rooms_fanout.ts",
    what:
      "room fan-out cost on the JS thread: one RTCAudioSource per listener vs one shared (50/100 listeners)",
  },
  forward_send: {
    file: "forward_send.ts",
    what:
      "a shared room listener's CPU per packet on the origin by send path (werift's sender vs SRTP + UDP directly)",
  },
  rooms_churn: {
    file: "rooms_churn.ts",
    what: "300 room listener joins/leaves through the edge's WHEP routes: origin threads, fds, RSS",
  },
  room_captions: {
    file: "room_captions.ts",
    needsPg: true,
    what: "caption lag, persisted → SSE viewer received, 200 viewers on a second edge process (p99 ≤ 1 s)",
  },
  sip_load: {
    file: "sip_load.ts",
    what:
      "20 concurrent phone calls (SIPp, speech pcap) transcribed: CPU, confirmed latency, RTP pacing, drops",
  },
  pipeline: { file: "pipeline_latency.ts", what: "speech → partial / confirmed latency, concurrency curve" },
  ws_listen: {
    file: "ws_listen.ts",
    what:
      "N (--streams, default 20) concurrent /v1/listen WebSocket streams vs N WebRTC sessions: confirmed latency p50",
  },
  tts_speed: { file: "tts_speed.ts", what: "espeak synthesis speed (audio s per CPU s)" },
  audio_codecs: {
    file: "audio_codecs.ts",
    what: "bytes per audio second and speed of wav/flac/mp3/opus at 24/48 kHz",
  },
  flite_speed: {
    file: "flite_speed.ts",
    what: "flite synthesis speed per voice (audio s per CPU s), first-sentence latency",
  },
  tts_storage: {
    file: "tts_storage.ts",
    what: "TTS job audio bytes per audio second stored as PCM vs Ogg Opus; encode/decode cost; 200k-char job",
  },
  tts_fairness: {
    file: "tts_fairness.ts",
    needsPg: true,
    what: "short vs long TTS jobs: fair vs FIFO claim order",
  },
  tts_claims: {
    file: "tts_claims.ts",
    needsPg: true,
    what: "TTS chunk claims/s with 2 claimers: fair / FIFO / plain queue, async vs durable commit",
  },
  history: {
    file: "history.ts",
    denoFlags: ["--v8-flags=--expose-gc"],
    needsPg: true,
    what: "1M segments: transcript page and search p99, ingest rate",
  },
  sphinx_leak: {
    file: "../origin/pipeline/stream_churn.ts",
    args: ["--sessions", "500", "--concurrency", "10"],
    what: "500 sessions with the streaming sphinx recognizer: RSS (anonymous), threads, fds before / after",
  },
  human_asr: {
    file: "human_asr.ts",
    denoFlags: ["--unstable-worker-options"],
    what:
      "human recordings (Debian packages): PocketSphinx CLI vs Parley's recognizers (FFI sphinx, moonshine) and live sessions, WER and RTF",
  },
  sphinx_dev: {
    file: "sphinx_dev.ts",
    what:
      "PocketSphinx settings and RNNoise pairings on development speech (flite voices, not the human corpus)",
  },
  sphinx_timing: {
    file: "sphinx_timing.ts",
    what: "PocketSphinx word start error against espeak's word times (median |start error|)",
  },
  voice_judge: {
    file: "voice_judge.ts",
    what: "intelligibility: held-out sentences per engine/voice → PocketSphinx CLI → WER side by side",
  },
  voice_judge_live: {
    file: "voice_judge_live.ts",
    what:
      "intelligibility through a live session: say → WebRTC client recording → PocketSphinx CLI, beside direct",
  },
  speech_judge: {
    file: "speech_judge.ts",
    what:
      "intelligibility of TTS job chunks joined (lead cut, trimmed pauses) vs the whole sentence, PocketSphinx",
  },
  openai_api: {
    file: "openai_api.ts",
    what:
      "OpenAI-compatible API: 60 s transcription wall/RTF, /v1/audio/speech first byte idle and behind 8 long jobs",
  },
  tts_first_audio: {
    file: "tts_first_audio.ts",
    denoFlags: ["--unstable-worker-options"],
    what: "first audio of a say's first sentence through the inference workers, flite vs espeak (p50/p90)",
  },
  eval_asr: { file: "eval_asr.ts", what: "bundled recognizer CER/WER (clean, 10 dB) and real-time factor" },
  wrtc_finalization: {
    file: "wrtc_finalization.ts",
    denoFlags: ["--v8-flags=--expose-gc"],
    what: "are wrtc's native objects finalized after close (Deno 2.9.6: no; the churn RSS growth)",
  },
};

// `deno task bench <name…> [--flag value…]` or `deno task bench <name…> -- args…`: the arguments from the
// first flag (or after `--`) go to every named benchmark.
const dashes = Deno.args.indexOf("--");
const firstFlag = dashes >= 0 ? dashes : Deno.args.findIndex((a) => a.startsWith("--"));
const benchArgs = firstFlag < 0 ? [] : Deno.args.slice(dashes >= 0 ? dashes + 1 : firstFlag);
const named = firstFlag >= 0 ? Deno.args.slice(0, firstFlag) : Deno.args;
const names = named.length ? named : Object.keys(BENCHES);
const pg = Deno.env.get("DATABASE_URL") ?? Deno.env.get("PARLEY_TEST_DATABASE_URL");
let failed = 0;
for (const name of names) {
  const b = BENCHES[name];
  if (!b) {
    console.error(`unknown benchmark '${name}'; known: ${Object.keys(BENCHES).join(", ")}`);
    Deno.exit(2);
  }
  try {
    Deno.statSync(new URL(b.file, import.meta.url));
  } catch {
    console.log(`\n=== ${name}: not present (${b.file})`);
    continue;
  }
  if (b.needsPg && !pg) {
    console.log(
      `\n=== ${name}: skipped, needs DATABASE_URL or PARLEY_TEST_DATABASE_URL (bash .ci/pg.sh start)`,
    );
    continue;
  }
  const flags = ["-A", "--unstable-worker-options", ...(b.denoFlags ?? [])];
  console.log(
    `\n=== ${name}: ${b.what}\n$ deno run ${flags.join(" ")} bench/${b.file} ${benchArgs.join(" ")}`,
  );
  const st = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...flags,
      new URL(b.file, import.meta.url).pathname,
      ...(b.args ?? []),
      ...benchArgs,
    ],
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  if (!st.success) {
    failed++;
    console.log(`=== ${name} exited with ${st.code}`);
  }
}
Deno.exit(failed ? 1 : 0);
