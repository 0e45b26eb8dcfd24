/**
 * What one room listener's Opus encoder costs, per encoder setting a room can ask for through the offer's
 * Opus parameters (origin/rooms/opus_profile.ts): CPU milliseconds per second of speech, one encoder, one
 * thread. libopus here is opusscript's WASM build, not the native SIMD build inside wrtc, so absolute figures
 * are higher than the origin's; the ratios between settings are what this measures. Settings mirror what
 * libwebrtc configures from the receiver's fmtp: application VOIP, complexity 9 (its desktop default),
 * bitrate = maxaveragebitrate (default 32 kbit/s mono), max bandwidth from maxplaybackrate, FEC from
 * useinbandfec, DTX from usedtx, frame size from ptime.
 *
 *   deno run -A bench/room_opus_cost.ts [--seconds 20]
 */
import OpusScript from "opusscript";
import { readWav } from "../origin/pipeline/wav.ts";

const CTL = { bitrate: 4002, maxBandwidth: 4004, complexity: 4010, fec: 4012, packetLoss: 4014, dtx: 4016 };
const BW = { wide: 1103, full: 1105 };

interface Setting {
  name: string;
  bitrate: number;
  bandwidth: number;
  fec: 0 | 1;
  dtx: 0 | 1;
  ptimeMs: number;
  complexity?: number;
}

const SETTINGS: Setting[] = [
  {
    name: "full (default offer: 32 kbit/s fullband, FEC, 20 ms)",
    bitrate: 32_000,
    bandwidth: BW.full,
    fec: 1,
    dtx: 0,
    ptimeMs: 20,
  },
  {
    name: "speech (16 kHz, 24 kbit/s, no FEC, DTX, 60 ms)",
    bitrate: 24_000,
    bandwidth: BW.wide,
    fec: 0,
    dtx: 1,
    ptimeMs: 60,
  },
  {
    name: "wideband only (maxplaybackrate=16000)",
    bitrate: 32_000,
    bandwidth: BW.wide,
    fec: 1,
    dtx: 0,
    ptimeMs: 20,
  },
  { name: "60 ms packets only (ptime=60)", bitrate: 32_000, bandwidth: BW.full, fec: 1, dtx: 0, ptimeMs: 60 },
  {
    name: "96 kbit/s fullband (maxaveragebitrate=96000: CELT)",
    bitrate: 96_000,
    bandwidth: BW.full,
    fec: 1,
    dtx: 0,
    ptimeMs: 20,
  },
  {
    name: "64 kbit/s fullband (maxaveragebitrate=64000)",
    bitrate: 64_000,
    bandwidth: BW.full,
    fec: 1,
    dtx: 0,
    ptimeMs: 20,
  },
  {
    name: "48 kbit/s fullband (maxaveragebitrate=48000)",
    bitrate: 48_000,
    bandwidth: BW.full,
    fec: 1,
    dtx: 0,
    ptimeMs: 20,
  },
  {
    name: "64 kbit/s wideband, 60 ms (CELT at 16 kHz)",
    bitrate: 64_000,
    bandwidth: BW.wide,
    fec: 0,
    dtx: 0,
    ptimeMs: 60,
  },
  {
    name: "96 kbit/s fullband, 60 ms",
    bitrate: 96_000,
    bandwidth: BW.full,
    fec: 0,
    dtx: 0,
    ptimeMs: 60,
  },
  {
    name: "complexity 5 (not settable through SDP)",
    bitrate: 32_000,
    bandwidth: BW.full,
    fec: 1,
    dtx: 0,
    ptimeMs: 20,
    complexity: 5,
  },
  {
    name: "complexity 1 (not settable through SDP)",
    bitrate: 32_000,
    bandwidth: BW.full,
    fec: 1,
    dtx: 0,
    ptimeMs: 20,
    complexity: 1,
  },
];

function arg(name: string, dflt: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : dflt;
}

function cpuMs(): number {
  const stat = Deno.readTextFileSync(`/proc/self/task/${Deno.pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

const seconds = Number(arg("seconds", "20"));
const speech = readWav(new URL("../tests/fixtures/speech/one_phrase_48k.wav", import.meta.url)).samples;
const total = 48_000 * seconds;
const pcm = new Int16Array(total);
for (let i = 0; i < total; i++) pcm[i] = speech[i % speech.length];
console.log(
  `one Opus encoder (opusscript WASM), ${seconds} s of looped speech, 48 kHz mono, VOIP; load ${
    Deno.readTextFileSync("/proc/loadavg").split(" ")[0]
  }`,
);
console.log("| setting | CPU ms per audio s | relative | bytes per s |");
console.log("|---|---|---|---|");
let base = 0;
for (const s of SETTINGS) {
  const enc = new OpusScript(48_000, 1, OpusScript.Application.VOIP);
  enc.encoderCTL(CTL.complexity, s.complexity ?? 9);
  enc.encoderCTL(CTL.bitrate, s.bitrate);
  enc.encoderCTL(CTL.maxBandwidth, s.bandwidth);
  enc.encoderCTL(CTL.fec, s.fec);
  enc.encoderCTL(CTL.dtx, s.dtx);
  const frame = 48 * s.ptimeMs;
  let bytes = 0;
  const c0 = cpuMs();
  for (let i = 0; i + frame <= total; i += frame) {
    bytes += enc.encode(Buffer.from(pcm.buffer, i * 2, frame * 2), frame).length;
  }
  const ms = (cpuMs() - c0) / seconds;
  base ||= ms;
  enc.delete();
  console.log(
    `| ${s.name} | ${ms.toFixed(1)} | ${(ms / base).toFixed(2)} | ${(bytes / seconds).toFixed(0)} |`,
  );
}
