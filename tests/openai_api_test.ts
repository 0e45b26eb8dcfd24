/**
 * The OpenAI-compatible API driven by the official `openai` npm client against a real `main.ts all` process
 * (ASR_ENGINE=ctc): transcription of the same spoken sentence as WAV, MP3 and Ogg Opus in every response format
 * and streamed; speech in every format, streamed and not, decoded back and checked; the model list; errors in
 * OpenAI's shape. No HTTP is written by hand here: every call goes through the SDK.
 */
import assert from "node:assert/strict";
import OpenAI, { toFile } from "openai";
import { startProcessStack } from "./web/stack.ts";
import { decodeAudio } from "../lib/audio/decode.ts";
import { encodeAudio } from "../lib/audio/encode.ts";
import { floatToInt16, resampleAll } from "../lib/audio/resampler.ts";
import { wordErrorRate } from "../origin/asr/error_rate.ts";

/** A held-out sentence (models/eval/manifest.tsv): never in the recognizer's training text. */
const SENTENCE = "in england they call a trillion a billion";
/** The bundled recognizer's per-sentence bar in Parley's own voice (tests/asr_bundled_test.ts). */
const MAX_WER = 0.25;

async function spoken(): Promise<{ wav: Uint8Array; mp3: Uint8Array; opus: Uint8Array }> {
  const dir = await Deno.makeTempDir({ prefix: "parley-oai-" });
  try {
    const path = `${dir}/s.wav`;
    const out = await new Deno.Command("espeak-ng", { args: ["-v", "en-us", "-w", path, SENTENCE] }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const wav = await Deno.readFile(path);
    const { pcm, sampleRate } = await decodeAudio(wav);
    const pcm24 = floatToInt16(resampleAll(pcm, sampleRate, 24000));
    return {
      wav,
      mp3: await encodeAudio(pcm24, 24000, "mp3"),
      opus: await encodeAudio(pcm24, 24000, "opus"),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function rms(x: Float32Array): number {
  let s = 0;
  for (const v of x) s += v * v;
  return Math.sqrt(s / Math.max(1, x.length));
}

Deno.test({
  name: "openai SDK against main.ts all: transcriptions, speech, models",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const [stack, audio] = await Promise.all([
      startProcessStack({ ASR_ENGINE: "ctc" }, { readyMs: 400_000 }),
      spoken(),
    ]);
    try {
      const client = new OpenAI({ apiKey: stack.adminKey, baseURL: `${stack.url}/v1`, maxRetries: 0 });

      await t.step("models.list", async () => {
        const ids: string[] = [];
        for await (const m of client.models.list()) {
          assert.equal(m.object, "model");
          assert.equal(typeof m.created, "number");
          ids.push(m.id);
        }
        for (const id of ["whisper-1", "gpt-4o-transcribe", "tts-1", "tts-1-hd", "ctc", "espeak"]) {
          assert.ok(ids.includes(id), `${id} in ${ids}`);
        }
        const m = await client.models.retrieve("whisper-1");
        assert.equal(m.id, "whisper-1");
      });

      for (
        const [kind, bytes, name] of [
          ["wav", audio.wav, "s.wav"],
          ["mp3", audio.mp3, "s.mp3"],
          ["opus", audio.opus, "s.ogg"],
        ] as const
      ) {
        await t.step(
          `transcriptions.create ${kind}: json, text, srt, vtt, verbose_json, stream`,
          async () => {
            const file = () => toFile(bytes, name);
            const json = await client.audio.transcriptions.create({ file: await file(), model: "whisper-1" });
            const w = wordErrorRate(SENTENCE, json.text);
            assert.ok(w <= MAX_WER, `${kind}: "${json.text}" WER ${w.toFixed(2)}`);

            const text = await client.audio.transcriptions.create({
              file: await file(),
              model: "gpt-4o-mini-transcribe",
              response_format: "text",
            });
            assert.equal(String(text).trim(), json.text);

            const srt = await client.audio.transcriptions.create({
              file: await file(),
              model: "ctc",
              response_format: "srt",
            });
            assert.match(String(srt), /^1\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n\S/);

            const vtt = await client.audio.transcriptions.create({
              file: await file(),
              model: "whisper-1",
              response_format: "vtt",
            });
            assert.match(String(vtt), /^WEBVTT\n\n1\n\d\d:\d\d:\d\d\.\d{3} --> /);

            const verbose = await client.audio.transcriptions.create({
              file: await file(),
              model: "whisper-1",
              response_format: "verbose_json",
              timestamp_granularities: ["segment", "word"],
              language: "en",
              temperature: 0,
              prompt: "a hint the engines ignore",
            });
            assert.equal(verbose.text, json.text);
            assert.ok(verbose.segments && verbose.segments.length >= 1);
            const dur = verbose.duration;
            assert.ok(dur > 1.5 && dur < 6, `duration ${dur}`);
            for (const s of verbose.segments!) {
              assert.ok(s.start >= 0 && s.end > s.start && s.end <= dur + 0.05);
            }
            // The bundled CTC model aligns words: every word inside the audio, in order, the text's words.
            const words = verbose.words!;
            assert.ok(words && words.length >= 2, `words: ${JSON.stringify(verbose).slice(0, 400)}`);
            for (const [i, w] of words.entries()) {
              assert.ok(w.start >= 0 && w.end > w.start && w.end <= dur + 0.05, JSON.stringify(w));
              if (i) assert.ok(w.start >= words[i - 1].start, "words in order");
            }
            assert.equal(
              words.map((w) => w.word).join(" ").toLowerCase(),
              verbose.text.trim().split(/\s+/).join(" ").toLowerCase(),
            );

            const stream = await client.audio.transcriptions.create({
              file: await file(),
              model: "whisper-1",
              stream: true,
            });
            let deltas = "";
            let done = "";
            for await (const ev of stream) {
              if (ev.type === "transcript.text.delta") deltas += ev.delta;
              else if (ev.type === "transcript.text.done") done = ev.text;
            }
            assert.equal(done, json.text);
            assert.equal(deltas, done);
          },
        );
      }

      await t.step("transcriptions.create store=true: kept in history, searchable, exportable", async () => {
        const auth = { authorization: `Bearer ${stack.adminKey}` };
        // `store` is OpenAI's own field name; this SDK version's types do not list it for transcriptions.
        const { data, response } = await client.audio.transcriptions.create(
          {
            file: await toFile(audio.wav, "stored.wav"),
            model: "whisper-1",
            response_format: "verbose_json",
            store: true,
          } as Parameters<typeof client.audio.transcriptions.create>[0],
        ).withResponse();
        const id = response.headers.get("x-parley-session-id");
        assert.ok(id, "x-parley-session-id");
        const text = (data as { text: string }).text;
        const row = await (await fetch(`${stack.url}/v1/sessions/${id}`, { headers: auth })).json();
        assert.equal(row.kind, "file");
        assert.equal(row.state, "closed");
        assert.equal(row.reason, "completed");
        const exported = await (await fetch(`${stack.url}/v1/sessions/${id}/transcript?format=text`, {
          headers: auth,
        })).text();
        assert.equal(exported.trim().split(/\s+/).join(" "), text.trim().split(/\s+/).join(" "));
        const vtt =
          await (await fetch(`${stack.url}/v1/sessions/${id}/transcript?format=vtt`, { headers: auth }))
            .text();
        assert.match(vtt, /^WEBVTT/);
        const word = text.trim().split(/\s+/).sort((a, b) => b.length - a.length)[0].replace(/\W/g, "");
        const found = await (await fetch(
          `${stack.url}/v1/transcripts/search?q=${encodeURIComponent(word)}`,
          { headers: auth },
        )).json();
        assert.ok(JSON.stringify(found).includes(id), `search for "${word}" finds the stored transcription`);
        // Without store nothing is kept.
        const plain = await client.audio.transcriptions.create({
          file: await toFile(audio.wav, "plain.wav"),
          model: "whisper-1",
        }).withResponse();
        assert.equal(plain.response.headers.get("x-parley-session-id"), null);
      });

      const INPUT = "Parley speaks the formats of the OpenAI audio API.";
      for (const format of ["wav", "pcm", "mp3", "opus", "flac"] as const) {
        await t.step(`speech.create ${format}: whole, streamed, sse`, async () => {
          const whole = new Uint8Array(
            await (await client.audio.speech.create({
              model: "tts-1",
              voice: "alloy",
              input: INPUT,
              response_format: format,
            })).arrayBuffer(),
          );
          let pcm: Float32Array;
          let rate: number;
          if (format === "pcm") {
            const i16 = new Int16Array(whole.buffer, 0, whole.length >> 1);
            pcm = Float32Array.from(i16, (v) => v / 32768);
            rate = 24000;
          } else {
            const d = await decodeAudio(whole);
            assert.equal(d.format, format === "opus" ? "opus" : format);
            pcm = d.pcm;
            rate = d.sampleRate;
          }
          const seconds = pcm.length / rate;
          assert.ok(seconds > 1.5 && seconds < 8, `${format}: ${seconds} s`);
          assert.ok(rms(pcm) > 0.01, `${format}: not silence (rms ${rms(pcm)})`);

          // streamed as it is synthesized, at half speed: longer audio, same voice (alloy is flite:rms)
          const res = await client.audio.speech.create({
            model: "tts-1-hd",
            voice: "flite:rms",
            input: INPUT + " " + INPUT,
            response_format: format,
            speed: 0.5,
          });
          let chunks = 0;
          const parts: Uint8Array[] = [];
          for await (const c of res.body!) {
            chunks++;
            parts.push(c);
          }
          assert.ok(chunks >= 1);
          const slow = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
          let at = 0;
          for (const p of parts) slow.set(p, (at += p.length) - p.length);
          const slowSeconds = format === "pcm"
            ? slow.length / 2 / 24000
            : (await decodeAudio(slow)).durationMs / 1000;
          assert.ok(slowSeconds > seconds * 3, `${format} at speed 0.5, twice the text: ${slowSeconds} s`);

          if (format === "wav") {
            // an engine's own voice id, and an OpenAI name mapped for the engine the model names
            for (const [model, voice] of [["espeak", "en-gb-x-rp"], ["espeak", "nova"], ["tts-1", "nova"]]) {
              const d = await decodeAudio(
                new Uint8Array(
                  await (await client.audio.speech.create({
                    model,
                    voice,
                    input: INPUT,
                    response_format: "wav",
                  }))
                    .arrayBuffer(),
                ),
              );
              assert.ok(d.durationMs > 1500, `${model} ${voice}: ${d.durationMs} ms`);
            }
          }

          const sse = await client.audio.speech.create({
            model: "tts-1",
            voice: "alloy",
            input: INPUT,
            response_format: format,
            stream_format: "sse",
          });
          const body = await sse.text();
          const events = body.split("\n\n").filter(Boolean).map((f) => JSON.parse(f.replace(/^data: /, "")));
          assert.ok(events.length >= 2);
          assert.equal(events.at(-1).type, "speech.audio.done");
          const b64 = events.slice(0, -1).map((e) => {
            assert.equal(e.type, "speech.audio.delta");
            return Uint8Array.from(atob(e.audio), (ch) => ch.charCodeAt(0));
          });
          const joined = new Uint8Array(b64.reduce((n, p) => n + p.length, 0));
          let o = 0;
          for (const p of b64) joined.set(p, (o += p.length) - p.length);
          const sseSeconds = format === "pcm"
            ? joined.length / 48000
            : (await decodeAudio(joined)).durationMs / 1000;
          assert.ok(Math.abs(sseSeconds - seconds) < 0.6, `${format} sse ${sseSeconds} s vs ${seconds} s`);
        });
      }

      await t.step("errors come in OpenAI's shape through the SDK", async () => {
        await assert.rejects(
          client.audio.speech.create({ model: "tts-1", voice: "alloy", input: "hi", speed: 3 }),
          (e: unknown) => {
            assert.ok(e instanceof OpenAI.BadRequestError);
            assert.equal(e.param, "speed");
            assert.equal(e.code, "validation_failed");
            assert.equal(e.type, "invalid_request_error");
            return true;
          },
        );
        await assert.rejects(
          client.audio.transcriptions.create({
            file: await toFile(new TextEncoder().encode("hello, not audio"), "x.wav"),
            model: "whisper-1",
          }),
          (e: unknown) => {
            assert.ok(e instanceof OpenAI.APIError);
            assert.equal(e.status, 415);
            assert.equal(e.param, "file");
            assert.match(e.message, /MP3, FLAC, Ogg Opus/);
            return true;
          },
        );
        const bad = new OpenAI({ apiKey: "pk_nope", baseURL: `${stack.url}/v1`, maxRetries: 0 });
        await assert.rejects(bad.models.list(), OpenAI.AuthenticationError);
      });
    } finally {
      assert.equal(await stack.close(), 0, stack.stderr().slice(-3000));
    }
  },
});
