import assert from "node:assert/strict";
import { loadRnnoise, NoiseSuppressor, RNNOISE_FRAME, RNNOISE_RATE } from "./rnnoise.ts";
import { parseWavHeader, wavToMonoFloat } from "../../lib/audio/wav_parse.ts";

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args }).output();
  assert.equal(out.code, 0, `${cmd}: ${new TextDecoder().decode(out.stderr)}`);
}

async function readMono(path: string): Promise<Float32Array> {
  const bytes = await Deno.readFile(path);
  return wavToMonoFloat(bytes, parseWavHeader(bytes));
}

/** An espeak-ng sentence with 1 s of silence either side, and sox-made noise of the same length, at 48 kHz. */
async function speechAndNoise(
  color: "whitenoise" | "pinknoise",
): Promise<{ clean: Float32Array; noise: Float32Array }> {
  const dir = await Deno.makeTempDir();
  try {
    await run("espeak-ng", ["-w", `${dir}/s.wav`, "Please call Stella and ask her to bring these things."]);
    await run("sox", [`${dir}/s.wav`, "-r", "48000", "-b", "16", `${dir}/c.wav`, "pad", "1", "1"]);
    const clean = await readMono(`${dir}/c.wav`);
    const seconds = (clean.length / RNNOISE_RATE).toFixed(3);
    // -R: repeatable noise, so the figures are the same on every run.
    await run("sox", [
      "-R",
      "-n",
      "-r",
      "48000",
      "-b",
      "16",
      `${dir}/n.wav`,
      "synth",
      seconds,
      color,
      "vol",
      "0.3",
    ]);
    const noise = (await readMono(`${dir}/n.wav`)).subarray(0, clean.length);
    return { clean, noise };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function energy(x: Float32Array, frames: number[]): number {
  let s = 0, n = 0;
  for (const f of frames) {
    for (let i = f * RNNOISE_FRAME; i < (f + 1) * RNNOISE_FRAME; i++) s += x[i] * x[i];
    n += RNNOISE_FRAME;
  }
  return s / n;
}

const db = (r: number) => 10 * Math.log10(r);

async function denoise(x: Float32Array): Promise<Float32Array> {
  const ns = await NoiseSuppressor.create();
  try {
    const out = new Float32Array(x.length);
    for (let i = 0; i + RNNOISE_FRAME <= x.length; i += RNNOISE_FRAME) {
      out.set(ns.process(x.subarray(i, i + RNNOISE_FRAME)), i);
    }
    return out;
  } finally {
    ns.close();
  }
}

Deno.test("rnnoise: 480-sample frames in, same type out; wrong sizes refused; close is idempotent", async () => {
  const ns = await NoiseSuppressor.create();
  const i16 = ns.process(new Int16Array(RNNOISE_FRAME).map((_, i) => Math.round(3000 * Math.sin(i / 5))));
  assert.ok(i16 instanceof Int16Array && i16.length === RNNOISE_FRAME);
  const f32 = ns.process(new Float32Array(RNNOISE_FRAME).fill(0.01));
  assert.ok(f32 instanceof Float32Array && f32.length === RNNOISE_FRAME);
  assert.ok(f32.every((v) => v >= -1 && v <= 1));
  assert.throws(() => ns.process(new Int16Array(160)), /480-sample frames/);
  ns.close();
  ns.close();
  assert.throws(() => ns.process(new Int16Array(RNNOISE_FRAME)), /closed/);
});

for (const color of ["whitenoise", "pinknoise"] as const) {
  Deno.test(`rnnoise: ${color} mixed at 5 dB SNR into speech is suppressed outside speech, speech kept`, async () => {
    const { clean, noise } = await speechAndNoise(color);
    const frames = Math.floor(clean.length / RNNOISE_FRAME);
    const all = Array.from({ length: frames }, (_, f) => f);
    const frameEnergy = all.map((f) => energy(clean, [f]));
    const peak = Math.max(...frameEnergy);
    const silent = all.filter((f) => frameEnergy[f] < peak * 1e-5);
    const speech = all.filter((f) => frameEnergy[f] > peak * 1e-2);
    assert.ok(
      silent.length > 100 && speech.length > 50,
      `${silent.length} silent / ${speech.length} speech frames`,
    );
    // Scale the noise so that speech power / noise power = 5 dB over the whole clip.
    const gain = Math.sqrt(energy(clean, all) / energy(noise, all) / 10 ** (5 / 10));
    const noisy = clean.map((v, i) => v + gain * noise[i]);
    const out = await denoise(noisy);
    // Skip the first 200 ms while RNNoise's noise estimate settles.
    const judged = silent.filter((f) => f >= 20);
    const noiseDrop = db(energy(noisy, judged) / energy(out, judged));
    const speechChange = db(energy(out, speech) / energy(clean, speech));
    const snrIn = db(energy(clean, speech) / energy(noisy, judged));
    const snrOut = db(energy(out, speech) / energy(out, judged));
    console.log(
      `${color}: noise outside speech -${noiseDrop.toFixed(1)} dB; speech energy ${
        speechChange.toFixed(1)
      } dB; ` +
        `speech/non-speech ${snrIn.toFixed(1)} → ${snrOut.toFixed(1)} dB`,
    );
    assert.ok(noiseDrop > 6, `noise dropped only ${noiseDrop.toFixed(1)} dB`);
    assert.ok(snrOut - snrIn > 6, `speech/non-speech ratio improved only ${(snrOut - snrIn).toFixed(1)} dB`);
    assert.ok(speechChange > -6, `speech lost ${speechChange.toFixed(1)} dB`);
  });
}

Deno.test("rnnoise: CPU per stream-second (reported)", async () => {
  const seconds = 10;
  const x = new Float32Array(RNNOISE_RATE * seconds).map(() => (Math.random() - 0.5) * 0.2);
  await denoise(x.subarray(0, RNNOISE_RATE)); // warm-up
  const t0 = performance.now();
  await denoise(x);
  const ms = (performance.now() - t0) / seconds;
  console.log(
    `RNNoise: ${ms.toFixed(2)} ms of CPU per stream-second (${(ms / 10).toFixed(1)} % of one core)`,
  );
  assert.ok(ms < 500, `${ms} ms per second of audio is not real time on one core`);
});

Deno.test("rnnoise: 500 create/close cycles free their native state; RSS flat (subprocess)", async () => {
  const mod = new URL("./rnnoise.ts", import.meta.url).href;
  // The probe: where the allocator puts a fresh 64 kB block. Freed states leave it where it was; leaked ones
  // push it up (the control below keeps 100 states open to show the probe sees that).
  const code = `
    import { loadRnnoise, NoiseSuppressor } from "${mod}";
    const m = await loadRnnoise();
    const probe = () => { const p = m._malloc(65536); m._free(p); return p; };
    const frame = new Int16Array(480).map((_, i) => (i * 37) % 2000 - 1000);
    const cycle = async (n) => { for (let i = 0; i < n; i++) { const s = await NoiseSuppressor.create(); s.process(frame); s.close(); } };
    await cycle(50);
    const p0 = probe(), heap0 = m.HEAPF32.length * 4, rss0 = Deno.memoryUsage().rss;
    await cycle(500);
    const p1 = probe(), heap1 = m.HEAPF32.length * 4, rss1 = Deno.memoryUsage().rss;
    const kept = [];
    for (let i = 0; i < 100; i++) kept.push(await NoiseSuppressor.create());
    const p2 = probe();
    for (const s of kept) s.close();
    console.log(JSON.stringify({ p0, p1, p2, heap0, heap1, rss0, rss1, stateBytes: m._rnnoise_get_size() }));
  `;
  const out = await new Deno.Command(Deno.execPath(), { args: ["eval", code] }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const r = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
  const mb = (b: number) => (b / 1048576).toFixed(1);
  console.log(
    `state ${r.stateBytes} B; allocator probe ${r.p0} → ${r.p1} after 500 create/close (${r.p2} with 100 open); ` +
      `WASM heap ${mb(r.heap0)} → ${mb(r.heap1)} MB; RSS ${mb(r.rss0)} → ${mb(r.rss1)} MB`,
  );
  assert.equal(r.p1, r.p0, "native allocations survived close()");
  assert.ok(r.p2 > r.p0, "control: open states should move the allocator probe");
  assert.equal(r.heap1, r.heap0, "WASM heap grew across 500 create/close cycles");
  assert.ok(r.rss1 - r.rss0 < 20 * 1048576, `RSS grew ${mb(r.rss1 - r.rss0)} MB`);
});

Deno.test("rnnoise: the module is loaded once per isolate", async () => {
  assert.equal(await loadRnnoise(), await loadRnnoise());
});
