import assert from "node:assert/strict";
import { createEncoder, ENCODE_FORMATS, encodeAudio, type EncodeFormat } from "./encode.ts";
import { decodeAudio } from "./decode.ts";
import { speech } from "./test_audio.ts";
import { oggCrc32 } from "./ogg_mux.ts";

function rms(x: Float32Array): number {
  let s = 0;
  for (const v of x) s += v * v;
  return Math.sqrt(s / Math.max(1, x.length));
}

async function soxiSeconds(bytes: Uint8Array, ext: string): Promise<number> {
  const f = await Deno.makeTempFile({ suffix: `.${ext}` });
  try {
    await Deno.writeFile(f, bytes);
    const out = await new Deno.Command("soxi", { args: ["-D", f] }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    return Number(new TextDecoder().decode(out.stdout).trim());
  } finally {
    await Deno.remove(f);
  }
}

/** libopus' own tools (Debian opus-tools): opusinfo must find no fault, opusdec gives the playback length. */
async function opusToolsSeconds(bytes: Uint8Array): Promise<number> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/a.opus`, bytes);
    const info = await new Deno.Command("opusinfo", { args: [`${dir}/a.opus`] }).output();
    const text = new TextDecoder().decode(info.stdout) + new TextDecoder().decode(info.stderr);
    assert.equal(info.code, 0, text);
    assert.ok(!/warning|error|corrupt|hole/i.test(text), text);
    const dec = await new Deno.Command("opusdec", { args: ["--quiet", `${dir}/a.opus`, `${dir}/a.wav`] })
      .output();
    assert.equal(dec.code, 0, new TextDecoder().decode(dec.stderr));
    return soxiSeconds(await Deno.readFile(`${dir}/a.wav`), "wav");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const DECODABLE = ENCODE_FORMATS.filter((f) => f !== "pcm") as Exclude<EncodeFormat, "pcm">[];

Deno.test("codecs: each format round-trips speech at 24 and 48 kHz (duration, energy, soxi)", async () => {
  for (const rate of [24000, 48000]) {
    const pcm = await speech(rate);
    const seconds = pcm.length / rate;
    for (const format of DECODABLE) {
      const bytes = await encodeAudio(pcm, rate, format);
      const back = await decodeAudio(bytes);
      assert.equal(back.format, format === "wav" ? "wav" : format);
      assert.ok(
        Math.abs(back.durationMs / 1000 - seconds) < 0.08,
        `${format}@${rate}: ${back.durationMs} ms vs ${seconds * 1000}`,
      );
      const ratio = rms(back.pcm) / rms(pcm);
      assert.ok(ratio > 0.7 && ratio < 1.3, `${format}@${rate}: energy ratio ${ratio}`);
      if (format === "wav" || format === "flac" || format === "mp3") {
        const s = await soxiSeconds(bytes, format);
        assert.ok(Math.abs(s - seconds) < 0.08, `soxi ${format}@${rate}: ${s} s vs ${seconds}`);
      }
      if (format === "opus") {
        const s = await opusToolsSeconds(bytes);
        assert.ok(Math.abs(s - seconds) < 0.001, `opusdec ${format}@${rate}: ${s} s vs ${seconds}`);
      }
    }
    const raw = await encodeAudio(pcm, rate, "pcm");
    assert.equal(raw.length, pcm.length * 2);
  }
});

Deno.test("codecs: streaming encoders emit bytes as they go and decode like the one-shot output", async () => {
  const rate = 24000;
  const pcm = await speech(rate);
  for (const format of DECODABLE) {
    const enc = await createEncoder(format, rate);
    const parts: Uint8Array[] = [];
    let firstNonEmpty = -1;
    const step = rate / 10; // 100 ms writes, like synthesis chunks
    for (let i = 0, n = 0; i < pcm.length; i += step, n++) {
      const out = enc.write(pcm.subarray(i, i + step));
      if (out.length > 0 && firstNonEmpty < 0) firstNonEmpty = n;
      parts.push(out);
    }
    parts.push(enc.end());
    enc.close(); // idempotent after end()
    assert.throws(() => enc.write(new Int16Array(10)), /closed/);
    assert.ok(
      firstNonEmpty >= 0 && firstNonEmpty <= 1,
      `${format}: first bytes after write ${firstNonEmpty}`,
    );
    const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.length;
    }
    const back = await decodeAudio(bytes);
    assert.ok(Math.abs(back.durationMs - pcm.length / rate * 1000) < 80, `${format}: ${back.durationMs} ms`);
  }
});

Deno.test("codecs: Ogg pages carry valid CRCs and granules end at the input length", async () => {
  const rate = 48000;
  const pcm = new Float32Array(rate * 1.234).map((_, i) => 0.3 * Math.sin(i / 7));
  const bytes = await encodeAudio(pcm, rate, "opus");
  let off = 0, pages = 0, lastGranule = 0n, eos = false;
  while (off < bytes.length) {
    assert.equal(String.fromCharCode(...bytes.subarray(off, off + 4)), "OggS");
    const segs = bytes[off + 26];
    let len = 27 + segs;
    for (let i = 0; i < segs; i++) len += bytes[off + 27 + i];
    const page = bytes.slice(off, off + len);
    const dv = new DataView(page.buffer);
    const crc = dv.getUint32(22, true);
    dv.setUint32(22, 0, true);
    assert.equal(oggCrc32(page), crc, `page ${pages} CRC`);
    lastGranule = dv.getBigInt64(6, true);
    eos = (page[5] & 4) !== 0;
    off += len;
    pages++;
  }
  assert.ok(eos, "last page has EOS");
  assert.equal(lastGranule, BigInt(312 + pcm.length), "final granule = pre-skip + samples");
});

Deno.test("codecs: unsupported rates and formats are refused up front", async () => {
  await assert.rejects(() => createEncoder("opus", 22050), /22050 Hz not supported/);
  await assert.rejects(() => createEncoder("mp3", 96000), /96000 Hz not supported/);
  await assert.rejects(() => createEncoder("ogg" as EncodeFormat, 48000), /unknown audio format/);
});

Deno.test("codecs: closing an abandoned encoder frees it (idempotent)", async () => {
  for (const format of ENCODE_FORMATS) {
    const enc = await createEncoder(format, 48000);
    enc.write(new Float32Array(4800));
    enc.close();
    enc.close();
    assert.throws(() => enc.end(), /closed/);
  }
});

Deno.test("codecs: 120 encode/decode cycles per format keep RSS flat (subprocess)", async () => {
  const dir = new URL(".", import.meta.url).href;
  const code = `
    import { encodeAudio } from "${dir}encode.ts";
    import { decodeAudio } from "${dir}decode.ts";
    const pcm = new Float32Array(24000).map((_, i) => 0.3 * Math.sin(i / 9));
    const cycle = async () => { for (const f of ["wav", "mp3", "opus", "flac"]) await decodeAudio(await encodeAudio(pcm, 24000, f)); };
    for (let i = 0; i < 30; i++) await cycle();
    globalThis.gc?.();
    const a = Deno.memoryUsage().rss;
    for (let i = 0; i < 120; i++) await cycle();
    globalThis.gc?.();
    const b = Deno.memoryUsage().rss;
    console.log(JSON.stringify({ a, b }));
  `;
  const out = await new Deno.Command(Deno.execPath(), { args: ["eval", "--v8-flags=--expose-gc", code] })
    .output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const { a, b } = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
  const growthMb = (b - a) / 1048576;
  console.log(
    `RSS after warm-up ${(a / 1048576).toFixed(1)} MB, after 480 more cycles +${growthMb.toFixed(1)} MB`,
  );
  assert.ok(growthMb < 40, `RSS grew ${growthMb.toFixed(1)} MB over 480 encode/decode cycles`);
});

Deno.test("codecs: 250 interleaved Opus streams stay independent (heap growth, no shared-buffer corruption)", async () => {
  const rate = 24000, streams = 250;
  const encs = await Promise.all(Array.from({ length: streams }, () => createEncoder("opus", rate)));
  const outs: Uint8Array[][] = encs.map(() => []);
  const tone = (k: number, from: number, n: number) =>
    new Float32Array(n).map((_, i) => 0.25 * Math.sin(2 * Math.PI * (200 + 20 * k) * (from + i) / rate));
  for (let t = 0; t < rate; t += 480) encs.forEach((e, k) => outs[k].push(e.write(tone(k, t, 480))));
  encs.forEach((e, k) => outs[k].push(e.end()));
  for (let k = 0; k < streams; k++) {
    const parts = outs[k];
    const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.length;
    }
    const { pcm, sampleRate } = await decodeAudio(bytes);
    let crossings = 0;
    for (let i = 1; i < pcm.length; i++) if ((pcm[i - 1] < 0) !== (pcm[i] < 0)) crossings++;
    const freq = crossings / 2 / (pcm.length / sampleRate);
    assert.ok(Math.abs(freq - (200 + 20 * k)) < 10, `stream ${k}: ${freq.toFixed(1)} Hz`);
    assert.ok(Math.abs(rms(pcm) - 0.25 / Math.SQRT2) < 0.03, `stream ${k}: rms ${rms(pcm)}`);
  }
});

Deno.test("codecs: Opus encoders close() gives their native memory back (create/close cycles after 200 open)", async () => {
  const open = [];
  for (let i = 0; i < 200; i++) open.push(await createEncoder("opus", 48000));
  for (const e of open) assert.ok(e.write(new Int16Array(960)).length > 0);
  for (const e of open) e.close();
  // An opusscript instance holds ~100 kB of WASM heap: 4000 leaked ones would be ~400 MB of RSS.
  const before = Deno.memoryUsage().rss;
  for (let i = 0; i < 4000; i++) {
    const e = await createEncoder("opus", i % 2 ? 24000 : 48000);
    e.write(new Int16Array(960));
    e.close();
  }
  const grownMb = (Deno.memoryUsage().rss - before) / 1048576;
  assert.ok(grownMb < 50, `RSS grew ${grownMb.toFixed(1)} MB over 4000 Opus encoder create/close cycles`);
});
