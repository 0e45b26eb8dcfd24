import assert from "node:assert/strict";
import { decodeAudio, sniffAudioFormat } from "./decode.ts";
import { encodeAudio } from "./encode.ts";
import {
  ACCEPTED_AUDIO_TYPES,
  AudioTooLargeError,
  InvalidAudioError,
  UnsupportedAudioError,
} from "./errors.ts";
import { buildWav } from "./test_audio.ts";
import { wavHeader } from "../../protocol/wav.ts";

const ascii = (s: string) => new Uint8Array([...s].map((c) => c.charCodeAt(0)));
function withHead(head: Uint8Array, size = 64): Uint8Array {
  const b = new Uint8Array(size);
  b.set(head);
  return b;
}

Deno.test("decode: the format comes from the bytes, not the name", async () => {
  const wav = buildWav({ frames: 1600 });
  const got = await decodeAudio(wav, { filename: "speech.mp3", contentType: "audio/mpeg" });
  assert.equal(got.format, "wav");
  const mp3 = await encodeAudio(new Float32Array(24000).map((_, i) => 0.2 * Math.sin(i / 5)), 24000, "mp3");
  assert.equal((await decodeAudio(mp3, { filename: "a.wav" })).format, "mp3");
  // An ID3 tag in front of the MP3 frames is skipped.
  const tagged = new Uint8Array(10 + 20 + mp3.length);
  tagged.set([0x49, 0x44, 0x33, 4, 0, 0, 0, 0, 0, 20]);
  tagged.set(mp3, 30);
  assert.equal(sniffAudioFormat(tagged), "mp3");
});

Deno.test("decode: unknown formats are a 415 that names the format and the accepted types", async () => {
  const cases: [Uint8Array, RegExp][] = [
    [withHead(new Uint8Array([0, 0, 0, 0x20, ...ascii("ftypM4A ")])), /MP4\/M4A\/AAC/],
    [withHead(new Uint8Array([0x1a, 0x45, 0xdf, 0xa3])), /WebM\/Matroska/],
    [withHead(ascii("FORM\0\0\0\0AIFF")), /AIFF/],
    [withHead(new Uint8Array([0xff, 0xf1, 0x50, 0x80])), /AAC \(ADTS\)/],
    [withHead(ascii("RF64")), /RF64/],
    [withHead(ascii("RIFF\0\0\0\0AVI ")), /not WAVE/],
    [withHead(ascii("OggS\0\x02" + "\0".repeat(20) + "\x01\x1e\x80theora")), /unknown codec/],
    [ascii("hello, this is text, not audio"), /not recognised/],
  ];
  for (const [bytes, re] of cases) {
    const e = await decodeAudio(bytes, { filename: "x.bin" }).then(() => null, (e) => e);
    assert.ok(e instanceof UnsupportedAudioError, `${re}: ${e}`);
    assert.equal(e.status, 415);
    assert.match(e.message, re);
    assert.ok(e.message.includes(ACCEPTED_AUDIO_TYPES), e.message);
    assert.ok(e.message.includes("x.bin"), e.message);
  }
  const empty = await decodeAudio(new Uint8Array(0)).then(() => null, (e) => e);
  assert.ok(empty instanceof InvalidAudioError && /0 bytes/.test(empty.message));
});

Deno.test("decode: byte and duration limits are 413s, checked before a WAV is expanded", async () => {
  const wav = buildWav({ frames: 16000 }); // 1 s at 16 kHz
  await assert.rejects(() => decodeAudio(wav, {}, { maxBytes: 1000 }), AudioTooLargeError);
  await assert.rejects(() => decodeAudio(wav, {}, { maxDurationMs: 500 }), (e: Error) => {
    assert.ok(e instanceof AudioTooLargeError && e.status === 413);
    return true;
  });
  // A header that claims an hour of 48 kHz stereo float in a tiny file is corrupt, not long.
  const liar = buildWav({
    tag: 3,
    bits: 32,
    channels: 2,
    rate: 48000,
    frames: 10,
    dataSize: 3600 * 48000 * 8,
  });
  await assert.rejects(() => decodeAudio(liar), InvalidAudioError);
  const mp3 = await encodeAudio(
    new Float32Array(48000 * 3).map((_, i) => 0.2 * Math.sin(i / 5)),
    48000,
    "mp3",
  );
  await assert.rejects(() => decodeAudio(mp3, {}, { maxDurationMs: 1000 }), AudioTooLargeError);
  assert.ok((await decodeAudio(mp3, {}, { maxDurationMs: 5000 })).durationMs > 2900);
});

Deno.test("decode: channels are averaged to mono; Parley's own streaming WAV header is accepted", async () => {
  const stereo = buildWav({ channels: 2, frames: 100 });
  const d = await decodeAudio(stereo);
  assert.equal(d.channels, 2);
  assert.equal(d.pcm.length, 100);
  const samples = new Int16Array(4800).fill(1000);
  const body = new Uint8Array(samples.buffer);
  const streamed = new Uint8Array(44 + body.length);
  streamed.set(wavHeader(24000, null));
  streamed.set(body, 44);
  const s = await decodeAudio(streamed);
  assert.equal(s.pcm.length, 4800);
  assert.equal(s.durationMs, 200);
  assert.ok(Math.abs(s.pcm[10] - 1000 / 32768) < 1e-6);
});

Deno.test("decode: 450 decodes of corrupt compressed files keep RSS flat (subprocess)", async () => {
  const dir = new URL(".", import.meta.url).href;
  const code = `
    import { encodeAudio } from "${dir}encode.ts";
    import { decodeAudio } from "${dir}decode.ts";
    const pcm = new Float32Array(24000).map((_, i) => 0.3 * Math.sin(i / 9));
    const seeds = await Promise.all(["mp3", "opus", "flac"].map((f) => encodeAudio(pcm, 24000, f)));
    const bad = seeds.map((s) => { const c = s.slice(); for (let i = 200; i < c.length; i += 97) c[i] ^= 0x5a; return c; });
    let failed = 0;
    const run = async (n) => { for (let i = 0; i < n; i++) for (const b of bad) await decodeAudio(b).catch(() => failed++); };
    await run(20);
    globalThis.gc?.();
    const a = Deno.memoryUsage().rss;
    await run(130);
    globalThis.gc?.();
    console.log(JSON.stringify({ a, b: Deno.memoryUsage().rss, failed }));
  `;
  const out = await new Deno.Command(Deno.execPath(), { args: ["eval", "--v8-flags=--expose-gc", code] })
    .output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const r = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
  const growth = (r.b - r.a) / 1048576;
  console.log(`${r.failed} of 450 corrupt decodes refused; RSS +${growth.toFixed(1)} MB over the last 390`);
  assert.ok(growth < 30, `RSS grew ${growth.toFixed(1)} MB`);
});

Deno.test("decode: files written by other encoders (sox, opusenc) decode to their true length", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = async (cmd: string, args: string[]) => {
      const out = await new Deno.Command(cmd, { args }).output();
      assert.equal(out.code, 0, `${cmd}: ${new TextDecoder().decode(out.stderr)}`);
    };
    await run("espeak-ng", ["-w", `${dir}/s.wav`, "Files from other encoders."]);
    await run("sox", [`${dir}/s.wav`, "-r", "44100", "-c", "2", "-b", "24", `${dir}/ref.wav`]);
    const made: [string, string[]][] = [
      ["sox", [`${dir}/ref.wav`, `${dir}/a.mp3`]],
      ["sox", [`${dir}/ref.wav`, `${dir}/a.flac`]],
      ["sox", [`${dir}/ref.wav`, `${dir}/a.ogg`]],
      ["sox", [`${dir}/ref.wav`, "-e", "floating-point", "-b", "32", `${dir}/f.wav`]],
      ["opusenc", ["--quiet", `${dir}/ref.wav`, `${dir}/a.opus`]],
    ];
    for (const [cmd, args] of made) await run(cmd, args);
    const truth = (await decodeAudio(await Deno.readFile(`${dir}/ref.wav`))).durationMs;
    const expect: Record<string, string> = {
      "a.mp3": "mp3",
      "a.flac": "flac",
      "a.ogg": "vorbis",
      "f.wav": "wav",
      "a.opus": "opus",
    };
    for (const [file, format] of Object.entries(expect)) {
      const d = await decodeAudio(await Deno.readFile(`${dir}/${file}`));
      assert.equal(d.format, format);
      assert.equal(d.channels, 2, file);
      // MP3 carries encoder delay/padding without a gapless tag from sox; the others are exact.
      const tol = format === "mp3" ? 60 : 1;
      assert.ok(Math.abs(d.durationMs - truth) <= tol, `${file}: ${d.durationMs} vs ${truth} ms`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
