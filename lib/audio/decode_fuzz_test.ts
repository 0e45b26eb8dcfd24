/**
 * Corrupt-file fuzz for decodeAudio: valid files of every format, then truncated at random points, with
 * random bytes flipped, with wrong magic, empty, and with huge size claims in their headers. Every case must
 * end in audio or one of the three typed errors — never another exception, never a hang.
 */
import assert from "node:assert/strict";
import { decodeAudio } from "./decode.ts";
import { encodeAudio } from "./encode.ts";
import { AudioTooLargeError, InvalidAudioError, UnsupportedAudioError } from "./errors.ts";
import { buildWav, speech } from "./test_audio.ts";

function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function vorbisSeed(pcm: Float32Array, rate: number): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/in.wav`, await encodeAudio(pcm, rate, "wav"));
    const out = await new Deno.Command("sox", { args: [`${dir}/in.wav`, "-C", "3", `${dir}/out.ogg`] })
      .output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    return await Deno.readFile(`${dir}/out.ogg`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Header fields that claim far more than the file holds, per format. */
function hugeClaims(name: string, seed: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  const patch = (off: number, bytes: number[]) => {
    const c = seed.slice();
    c.set(bytes, off);
    out.push(c);
  };
  if (name.startsWith("wav")) {
    const dataAt = 36; // buildWav/encodeAudio put "data" right after a 16-byte fmt chunk
    patch(4, [0xf0, 0xff, 0xff, 0x7f]);
    patch(dataAt + 4, [0x00, 0x00, 0x00, 0x80]);
    patch(dataAt + 4, [0xfe, 0xff, 0xff, 0xff]);
    patch(16, [0xff, 0xff, 0xff, 0x7f]); // fmt chunk size
  } else if (name === "flac") {
    patch(5, [0xff, 0xff, 0xff]); // STREAMINFO block length
    patch(18, [0xff, 0xff, 0xff, 0xff, 0xff]); // rate/channels/bits/total samples
  } else if (name === "mp3") {
    out.push(new Uint8Array([0x49, 0x44, 0x33, 3, 0, 0, 0x7f, 0x7f, 0x7f, 0x7f, ...seed.subarray(0, 4000)]));
  } else {
    patch(26, [0xff]); // first page claims 255 segments
    patch(6, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]); // granule
  }
  return out;
}

Deno.test("decode fuzz: truncated, flipped, wrong-magic, empty and huge-claim files give only typed errors", async () => {
  const rate = 24000;
  const pcm = (await speech(rate)).subarray(0, rate); // 1 s keeps each case quick
  const seeds: Record<string, Uint8Array> = {
    wav16: await encodeAudio(pcm, rate, "wav"),
    wav24ext: buildWav({ extensible: 1, bits: 24, channels: 2, frames: 4000 }),
    wavfloat: buildWav({ tag: 3, bits: 32, frames: 4000 }),
    mp3: await encodeAudio(pcm, rate, "mp3"),
    flac: await encodeAudio(pcm, rate, "flac"),
    opus: await encodeAudio(pcm, rate, "opus"),
    vorbis: await vorbisSeed(pcm, rate),
  };
  for (const [name, bytes] of Object.entries(seeds)) {
    const ok = await decodeAudio(bytes);
    assert.ok(ok.durationMs > 100, `seed ${name} decodes`);
  }
  const random = rng(20261206);
  const cases: { name: string; kind: string; bytes: Uint8Array }[] = [];
  for (const [name, seed] of Object.entries(seeds)) {
    for (let i = 0; i < 25; i++) {
      cases.push({ name, kind: "truncated", bytes: seed.slice(0, Math.floor(random() * seed.length)) });
    }
    for (let i = 0; i < 25; i++) {
      const c = seed.slice();
      const flips = 1 + Math.floor(random() * 8);
      // Half the cases hit the first 64 bytes (headers), half anywhere.
      for (let k = 0; k < flips; k++) {
        const at = Math.floor(random() * (i % 2 ? c.length : Math.min(64, c.length)));
        c[at] ^= 1 << Math.floor(random() * 8);
      }
      cases.push({ name, kind: "flipped", bytes: c });
    }
    const wrong = seed.slice();
    wrong.set([0x00, 0x01, 0x02, 0x03]);
    cases.push({ name, kind: "wrong-magic", bytes: wrong });
    for (const b of hugeClaims(name, seed)) cases.push({ name, kind: "huge-claim", bytes: b });
    cases.push({ name, kind: "header-only", bytes: seed.slice(0, 64) });
  }
  cases.push({ name: "empty", kind: "empty", bytes: new Uint8Array(0) });
  for (let i = 0; i < 10; i++) {
    cases.push({
      name: "junk",
      kind: "random",
      bytes: new Uint8Array(1 + Math.floor(random() * 5000)).map(() => Math.floor(random() * 256)),
    });
  }
  const magics = ["RIFF", "OggS", "fLaC", "ID3", "\xff\xfb"];
  for (const m of magics) {
    const b = new Uint8Array(200).map(() => Math.floor(random() * 256));
    for (let i = 0; i < m.length; i++) b[i] = m.charCodeAt(i);
    cases.push({ name: "junk", kind: `magic ${JSON.stringify(m)} + junk`, bytes: b });
  }

  const counts: Record<string, number> = {};
  for (const c of cases) {
    let outcome: string;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const res = await Promise.race([
        decodeAudio(c.bytes, {}, { maxDurationMs: 30_000 }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("hang: no result in 10 s")), 10_000);
        }),
      ]);
      assert.ok(res.pcm.every(Number.isFinite), `${c.name}/${c.kind}: non-finite samples`);
      outcome = "decoded";
    } catch (e) {
      if (e instanceof InvalidAudioError) outcome = "400";
      else if (e instanceof UnsupportedAudioError) outcome = "415";
      else if (e instanceof AudioTooLargeError) outcome = "413";
      else throw new Error(`${c.name}/${c.kind} (${c.bytes.length} bytes): untyped ${e}`);
      assert.ok(e.message.length > 0);
    } finally {
      clearTimeout(timer);
    }
    const key = `${c.name} ${outcome}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  console.log(`${cases.length} cases:`, JSON.stringify(counts));
  assert.ok(cases.length >= 300, `${cases.length} cases`);
});
