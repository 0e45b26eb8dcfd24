/**
 * Bad input for the OpenAI-compatible routes, generated: truncated and corrupted files of each format, wrong
 * extensions, empty and oversize files, huge multipart headers, invalid UTF-8 fields, missing and wrong fields
 * (transcriptions); wrong JSON, voices, speeds, formats and oversize input (speech). Against a real `main.ts all`
 * process: every answer is < 500, every 4xx has OpenAI's error shape with a message, the process survives,
 * and no job or session row is left behind unfinished.
 *
 * Raw HTTP on purpose: the SDK cannot send most of these.
 */
import assert from "node:assert/strict";
import { startProcessStack } from "./web/stack.ts";
import { decodeAudio } from "../lib/audio/decode.ts";
import { encodeAudio } from "../lib/audio/encode.ts";
import { floatToInt16, resampleAll } from "../lib/audio/resampler.ts";

interface Case {
  name: string;
  path: string;
  init: () => RequestInit;
  /** Statuses this case may get (default: any 4xx). */
  ok?: number[];
}

function rng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

async function fixtures(): Promise<Record<string, Uint8Array>> {
  const dir = await Deno.makeTempDir({ prefix: "parley-oai-bad-" });
  try {
    const out = await new Deno.Command("espeak-ng", {
      args: ["-v", "en-us", "-w", `${dir}/s.wav`, "how do you spell this word"],
    }).output();
    assert.equal(out.code, 0);
    const wav = await Deno.readFile(`${dir}/s.wav`);
    const ogg = await new Deno.Command("sox", { args: [`${dir}/s.wav`, `${dir}/s.ogg`] }).output();
    const d = await decodeAudio(wav);
    const pcm24 = floatToInt16(resampleAll(d.pcm, d.sampleRate, 24000));
    const files: Record<string, Uint8Array> = {
      wav,
      mp3: await encodeAudio(pcm24, 24000, "mp3"),
      opus: await encodeAudio(pcm24, 24000, "opus"),
      flac: await encodeAudio(pcm24, 24000, "flac"),
    };
    if (ogg.code === 0) files.vorbis = await Deno.readFile(`${dir}/s.ogg`);
    return files;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const EXT: Record<string, string> = { wav: "wav", mp3: "mp3", opus: "ogg", flac: "flac", vorbis: "ogg" };

function form(fields: Record<string, string | Uint8Array>, filename = "a.wav"): () => RequestInit {
  return () => {
    const f = new FormData();
    for (const [k, v] of Object.entries(fields)) {
      if (typeof v === "string") f.append(k, v);
      else f.append(k, new Blob([v as Uint8Array<ArrayBuffer>]), filename);
    }
    return { method: "POST", body: f };
  };
}

function rawMultipart(parts: Uint8Array[], boundary = "XyZ"): () => RequestInit {
  return () => {
    const body = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      body.set(p, at);
      at += p.length;
    }
    return {
      method: "POST",
      headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
      body,
    };
  };
}

const te = new TextEncoder();

function transcriptionCases(files: Record<string, Uint8Array>): Case[] {
  const cases: Case[] = [];
  const P = "/v1/audio/transcriptions";
  const r = rng(19);
  for (const [fmt, bytes] of Object.entries(files)) {
    // truncations: inside the header, just after it, and at fractions of the file
    const cuts = [1, 3, 4, 8, 11, 12, 16, 27, 36, 43, 44, 45, 64, 100, 200, 512, 1000];
    for (let i = 1; i < 20; i++) cuts.push(Math.floor((bytes.length * i) / 20));
    for (const n of cuts) {
      cases.push({
        name: `${fmt} truncated to ${n} bytes`,
        path: P,
        init: form({ model: "whisper-1", file: bytes.slice(0, n) }, `t.${EXT[fmt]}`),
        ok: [200, 400, 415],
      });
    }
    // corruptions: random bytes overwritten in the header, the middle, everywhere
    for (let i = 0; i < 12; i++) {
      const c = bytes.slice();
      const from = i < 4 ? 0 : i < 8 ? Math.floor(c.length / 3) : 0;
      const span = i < 4 ? 64 : i < 8 ? 256 : c.length;
      for (let k = 0; k < 40 + i * 20; k++) {
        c[from + Math.floor(r() * Math.min(span, c.length - from))] = r() * 256;
      }
      cases.push({
        name: `${fmt} corrupted #${i}`,
        path: P,
        init: form({ model: "whisper-1", file: c }, `c.${EXT[fmt]}`),
        ok: [200, 400, 415],
      });
    }
    // right bytes, wrong names and types: sniffed from the bytes, so these must work
    for (const name of ["x.wav", "x.mp3", "x.txt", "noext", "x.ogg", "../../etc/passwd"]) {
      cases.push({
        name: `${fmt} named ${name}`,
        path: P,
        init: form({ model: "whisper-1", file: bytes }, name),
        ok: [200],
      });
    }
  }
  const wav = files.wav;
  const junk = [
    ["0-byte", new Uint8Array(0)],
    ["text", te.encode("hello world, not audio")],
    ["png", Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13])],
    ["riff-not-wave", te.encode("RIFF\x10\x00\x00\x00AVI LIST")],
    ["ogg-not-audio", te.encode("OggS\x00\x02" + "\x00".repeat(60))],
    ["id3-only", te.encode("ID3\x04\x00\x00\x00\x00\x00\x00")],
    ["fLaC-only", te.encode("fLaC")],
    ["zeros", new Uint8Array(4096)],
    ["random", Uint8Array.from({ length: 8192 }, () => r() * 256)],
  ] as const;
  for (const [n, b] of junk) {
    cases.push({ name: `junk ${n}`, path: P, init: form({ model: "whisper-1", file: b as Uint8Array }) });
  }
  cases.push({
    name: "26 MB file",
    path: P,
    init: form({ model: "whisper-1", file: new Uint8Array(26 * 1024 * 1024) }),
    ok: [413],
  });
  const fieldCases: Array<[string, Record<string, string | Uint8Array>]> = [
    ["no file", { model: "whisper-1" }],
    ["no model", { file: wav }],
    ["empty model", { model: "", file: wav }],
    ["unknown model", { model: "gpt-9", file: wav }],
    ["tts model", { model: "tts-1", file: wav }],
    ["file as text", { model: "whisper-1", file: "not a file" } as Record<string, string>],
    ["model as file", { model: wav, file: wav }],
    ["bad response_format", { model: "whisper-1", file: wav, response_format: "xml" }],
    ["response_format case", { model: "whisper-1", file: wav, response_format: "JSON" }],
    ["temperature text", { model: "whisper-1", file: wav, temperature: "hot" }],
    ["temperature 2", { model: "whisper-1", file: wav, temperature: "2" }],
    ["temperature -1", { model: "whisper-1", file: wav, temperature: "-1" }],
    ["temperature empty", { model: "whisper-1", file: wav, temperature: "" }],
    ["language long", { model: "whisper-1", file: wav, language: "english-please" }],
    ["language digits", { model: "whisper-1", file: wav, language: "12" }],
    ["stream maybe", { model: "whisper-1", file: wav, stream: "maybe" }],
    ["stream srt", { model: "whisper-1", file: wav, stream: "true", response_format: "srt" }],
    ["granularity bad", {
      model: "whisper-1",
      file: wav,
      response_format: "verbose_json",
      "timestamp_granularities[]": "char",
    }],
    ["granularity without verbose", { model: "whisper-1", file: wav, "timestamp_granularities[]": "word" }],
    ["store maybe", { model: "whisper-1", file: wav, store: "maybe" }],
    ["prompt 20k", { model: "whisper-1", file: wav, prompt: "x".repeat(20_000) }],
  ];
  for (const [n, f] of fieldCases) cases.push({ name: `field: ${n}`, path: P, init: form(f) });

  // invalid UTF-8 in each text field
  for (const field of ["model", "language", "response_format", "prompt", "temperature", "stream"]) {
    for (const bad of [[0xff], [0xc3], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]]) {
      const head = te.encode(
        `--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n`,
      );
      const mid = te.encode(`\r\n--XyZ\r\nContent-Disposition: form-data; name="${field}"\r\n\r\n`);
      const modelPart = field === "model" ? [] : [
        te.encode(`\r\n--XyZ\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1`),
      ];
      cases.push({
        name: `invalid UTF-8 ${bad.map((b) => b.toString(16)).join(" ")} in ${field}`,
        path: P,
        init: rawMultipart([
          head,
          wav,
          ...modelPart,
          mid,
          te.encode("a"),
          Uint8Array.from(bad),
          te.encode("\r\n--XyZ--\r\n"),
        ]),
        ok: [400],
      });
    }
  }
  // framing
  const hugeName = "h".repeat(200_000);
  const framing: Array<[string, () => RequestInit, number[]?]> = [
    [
      "huge part header",
      rawMultipart([
        te.encode(`--XyZ\r\nContent-Disposition: form-data; name="file"; filename="${hugeName}"\r\n\r\n`),
        wav,
        te.encode(
          `\r\n--XyZ\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n--XyZ--\r\n`,
        ),
      ]),
      [200, 400, 413],
    ],
    [
      "many part headers",
      rawMultipart([
        te.encode(
          `--XyZ\r\n${
            "X-Pad: y\r\n".repeat(20_000)
          }Content-Disposition: form-data; name="model"\r\n\r\nw\r\n--XyZ--\r\n`,
        ),
      ]),
    ],
    [
      "no closing boundary",
      rawMultipart([
        te.encode(`--XyZ\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1`),
      ]),
    ],
    [
      "wrong boundary",
      rawMultipart([
        te.encode(`--Other\r\nContent-Disposition: form-data; name="model"\r\n\r\nx\r\n--Other--\r\n`),
      ]),
    ],
    ["empty body", rawMultipart([])],
    ["garbage body", rawMultipart([Uint8Array.from({ length: 5000 }, () => r() * 256)])],
    ["json instead of form", () => ({
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"model":"whisper-1"}',
    })],
    ["no content type", () => ({ method: "POST", body: wav as Uint8Array<ArrayBuffer> })],
    ["multipart without boundary", () => ({
      method: "POST",
      headers: { "content-type": "multipart/form-data" },
      body: "x",
    })],
  ];
  for (const [n, init, ok] of framing) cases.push({ name: `framing: ${n}`, path: P, init, ok });
  return cases;
}

function speechCases(): Case[] {
  const P = "/v1/audio/speech";
  const json = (b: unknown) => () => ({
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof b === "string" ? b : JSON.stringify(b),
  });
  const base = { model: "tts-1", voice: "alloy", input: "Hello." };
  const cases: Case[] = [];
  const bodies: Array<[string, unknown, number[]?]> = [
    ["not json", "{model:"],
    ["array", "[]"],
    ["null", "null"],
    ["string", '"hi"'],
    ["empty object", {}],
    ["no model", { voice: "alloy", input: "hi" }],
    ["no voice", { model: "tts-1", input: "hi" }],
    ["no input", { model: "tts-1", voice: "alloy" }],
    ["empty input", { ...base, input: "" }],
    ["whitespace input", { ...base, input: "   \n\t " }],
    ["punctuation input", { ...base, input: "...!!!" }, [200, 400]],
    ["4097 chars", { ...base, input: "a".repeat(4097) }, [413]],
    ["100k chars", { ...base, input: "word ".repeat(20_000) }, [413]],
    ["input number", { ...base, input: 5 }],
    ["input array", { ...base, input: ["a"] }],
    ["model number", { ...base, model: 1 }],
    ["unknown model", { ...base, model: "gpt-9" }],
    ["asr model", { ...base, model: "whisper-1" }],
    ["voice number", { ...base, voice: 3 }],
    ["voice object", { ...base, voice: { id: "alloy" } }],
    ["response_format number", { ...base, response_format: 1 }],
    ["stream_format bad", { ...base, stream_format: "chunked" }],
    ["instructions number", { ...base, instructions: 4 }],
    ["speed string", { ...base, speed: "fast" }],
    ["speed null", { ...base, speed: null }, [200]],
    ["speed NaN-ish", '{"model":"tts-1","voice":"alloy","input":"hi","speed":1e999}'],
    ["engine voice mismatch", { ...base, model: "espeak", voice: "vits:default" }],
  ];
  for (
    const v of [
      "",
      "nobody",
      "alloy2",
      "espeak:nobody",
      "vits:nobody",
      "x".repeat(200),
      "../../etc",
      "en-us\u0000",
    ]
  ) {
    bodies.push([`voice ${JSON.stringify(v).slice(0, 20)}`, { ...base, voice: v }]);
  }
  for (const f of ["aac", "ogg", "MP3", "wave", "", "pcm16", "opus;rate=48000"]) {
    bodies.push([`response_format ${JSON.stringify(f)}`, { ...base, response_format: f }]);
  }
  for (const s of [0, -1, 0.1, 0.24, 0.3, 0.49, 2.01, 3, 4, 4.01, 100]) {
    bodies.push([`speed ${s}`, { ...base, speed: s }]);
  }
  for (const [n, b, ok] of bodies) cases.push({ name: `speech: ${n}`, path: P, init: json(b), ok });
  cases.push({
    name: "speech: invalid UTF-8 body",
    path: P,
    init: () => ({
      method: "POST",
      headers: { "content-type": "application/json" },
      body: Uint8Array.from([
        ...te.encode('{"model":"tts-1","voice":"alloy","input":"'),
        0xff,
        0xfe,
        ...te.encode('"}'),
      ]),
    }),
  });
  cases.push({
    name: "speech: form instead of json",
    path: P,
    init: form({ model: "tts-1", voice: "alloy", input: "hi" }),
  });
  cases.push({
    name: "speech: 2 MB body",
    path: P,
    init: json({ ...base, input: "a".repeat(2_000_000) }),
    ok: [413],
  });
  return cases;
}

Deno.test({
  name: "OpenAI routes: 300+ generated bad inputs → 4xx in OpenAI's shape, no 5xx, nothing left behind",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const [stack, files] = await Promise.all([
      startProcessStack({ ASR_ENGINE: "ctc", RATE_LIMIT_RPS: "10000", RATE_LIMIT_BURST: "10000" }, {
        readyMs: 400_000,
      }),
      fixtures(),
    ]);
    try {
      const cases = [...transcriptionCases(files), ...speechCases()];
      assert.ok(cases.length >= 300, `${cases.length} cases`);
      const failures: string[] = [];
      const statuses: Record<number, number> = {};
      let next = 0;
      const worker = async () => {
        while (next < cases.length) {
          const c = cases[next++];
          const init = c.init();
          const headers = new Headers(init.headers);
          headers.set("authorization", `Bearer ${stack.adminKey}`);
          let status = 0;
          let text = "";
          try {
            const res = await fetch(stack.url + c.path, { ...init, headers });
            status = res.status;
            text = await res.text();
          } catch (e) {
            failures.push(`${c.name}: request failed: ${e}`);
            continue;
          }
          statuses[status] = (statuses[status] ?? 0) + 1;
          const allowed = c.ok ?? [];
          if (status >= 500) failures.push(`${c.name}: ${status} ${text.slice(0, 200)}`);
          else if (allowed.length ? !allowed.includes(status) : status < 400) {
            failures.push(
              `${c.name}: status ${status}, expected ${allowed.join("/") || "4xx"}: ${text.slice(0, 120)}`,
            );
          }
          if (status >= 400) {
            try {
              const e = JSON.parse(text).error;
              if (
                typeof e?.message !== "string" || e.message.length < 5 || typeof e.code !== "string" ||
                typeof e.type !== "string" || !("param" in e)
              ) failures.push(`${c.name}: not OpenAI's error shape: ${text.slice(0, 200)}`);
            } catch {
              failures.push(`${c.name}: error body is not JSON: ${text.slice(0, 200)}`);
            }
          }
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
      console.log(`${cases.length} cases; statuses ${JSON.stringify(statuses)}`);
      assert.deepEqual(failures, []);

      // still serving
      const h = await fetch(stack.url + "/healthz");
      assert.equal(h.status, 200);
      await h.body?.cancel();
      // nothing left unfinished: every speech job ended, no session row was made
      const auth = { authorization: `Bearer ${stack.adminKey}` };
      const deadline = Date.now() + 60_000;
      let open = -1;
      while (Date.now() < deadline) {
        const q = await (await fetch(`${stack.url}/v1/tts/jobs?status=queued&limit=100`, { headers: auth }))
          .json();
        const r = await (await fetch(`${stack.url}/v1/tts/jobs?status=running&limit=100`, { headers: auth }))
          .json();
        open = q.jobs.length + r.jobs.length;
        if (open === 0) break;
        await new Promise((res) => setTimeout(res, 500));
      }
      assert.equal(open, 0, "speech jobs left queued or running");
      const s = await (await fetch(`${stack.url}/v1/sessions?limit=10`, { headers: auth })).json();
      assert.equal(s.sessions.length, 0, "no session rows from transcriptions");
    } finally {
      assert.equal(await stack.close(), 0, stack.stderr().slice(-3000));
    }
  },
});
