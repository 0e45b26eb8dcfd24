/**
 * Voices, speed and SSML through the real API: GET /v1/voices, one naming scheme for sessions and jobs, unknown
 * voices and bad SSML refused with 4xx before anything is stored (300 generated bad cases), and an SSML job at
 * speed 1.5 synthesized by the default flite voice in the inference workers.
 */
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { api, AUDIO_OFFER, startStack } from "./harness.ts";
import { ttsRoutes } from "../edge/routes/tts.ts";
import { TtsJobWorker } from "../origin/tts_jobs/worker.ts";
import { PoolSynthesizer } from "../origin/tts_jobs/synth.ts";
import { ttsConfig } from "../origin/engine_config.ts";
import { parseConfig } from "../lib/config.ts";
import { resolveVoice, type VoiceList } from "../protocol/voices.ts";
import type { TtsJob, TtsJobCreated } from "../protocol/tts.ts";

Deno.test("voice names: engine:id, bare ids against the default engine first, engine names, unknowns", () => {
  const d = { engine: "flite" as const };
  assert.deepEqual(resolveVoice(undefined, d), { engine: "flite", voice: "rms" });
  assert.deepEqual(resolveVoice("flite:slt", d), { engine: "flite", voice: "slt" });
  assert.deepEqual(resolveVoice("espeak:de", d), { engine: "espeak", voice: "de" });
  assert.deepEqual(resolveVoice("en-us", d), { engine: "espeak", voice: "en-us" });
  assert.deepEqual(resolveVoice("awb", { engine: "espeak" }), { engine: "flite", voice: "awb" });
  assert.deepEqual(resolveVoice("espeak", d), { engine: "espeak", voice: "en-us" });
  assert.deepEqual(resolveVoice(undefined, { engine: "espeak", voice: "de" }), {
    engine: "espeak",
    voice: "de",
  });
  for (const bad of ["nope", "flite:de", "espeak:rms", "foo:rms", "flite:rms:x"]) {
    assert.equal(resolveVoice(bad, d), null, bad);
  }
});

/** Bad SSML/text cases of many shapes (deterministic). */
function badCases(n: number): Array<{ name: string; json: Record<string, unknown> }> {
  const shapes: Array<(i: number) => Record<string, unknown>> = [
    (i) => ({ text: `<speak>hello ${i}`, ssml: true }), // unclosed root
    (i) => ({ text: `<speak><prosody rate="fast">a ${i}</speak>`, ssml: true }), // mismatched
    (i) => ({
      text: `<speak>${"<prosody rate='slow'>".repeat(6)}x${"</prosody>".repeat(6)} ${i}</speak>`,
      ssml: true,
    }),
    (i) => ({ text: `<speak>&bogus; ${i}</speak>`, ssml: true }),
    (i) => ({ text: `<speak>${'<break time="1ms"/>'.repeat(10_000)} ${i}</speak>`, ssml: true }),
    (i) => ({ text: `<speak><script>alert(${i})</script></speak>`, ssml: true }),
    (i) => ({ text: `<speak>${"9".repeat(40 + i % 50)}</speak>`, ssml: true }),
    (i) => ({ text: `<speak><break time="${99 + i}s"/>x</speak>`, ssml: true }),
    (i) => ({ text: `<speak><!-- c ${i} --></speak>`, ssml: true }),
    (i) => ({ text: `<!DOCTYPE x [<!ENTITY e "${i}">]><speak>&e;</speak>`, ssml: true }),
    (i) => ({ text: `<speak><prosody rate="${5 + i}">x</prosody></speak>`, ssml: true }),
    (i) => ({ text: `<speak><say-as interpret-as="date">${i}</say-as></speak>`, ssml: true }),
    (i) => ({ text: `<speak><audio src="http://x/${i}"/></speak>`, ssml: true }),
    (i) => ({ text: `<speak>\u0001 ${i}</speak>`, ssml: true }),
    (i) => ({ text: `<speak><break/><break/></speak>`.repeat(1 + i % 3), ssml: true }),
    (i) => ({ text: `hello ${i}`, voice: `nope-${i}` }),
    (i) => ({ text: `hello ${i}`, voice: "flite:de" }),
    (i) => ({ text: `hello ${i}`, speed: 2.5 + i }),
    (i) => ({ text: `hello ${i}`, speed: 0.1 }),
    (i) => ({ text: " \n\t".repeat(1 + i % 5) }),
    (i) => ({ text: `hello ${i}`, engine: "espeak", voice: "rms" }),
  ];
  return Array.from({ length: n }, (_, i) => ({ name: `case ${i}`, json: shapes[i % shapes.length](i) }));
}

Deno.test({
  name:
    "voices api: GET /v1/voices, unknown voices and 300 bad SSML/text cases are 4xx with nothing stored; " +
    "an SSML job at speed 1.5 in the default flite voice",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const stack = await startStack({ routes: [ttsRoutes] });
    let synth: PoolSynthesizer | null = null;
    let worker: TtsJobWorker | null = null;
    const { key } = await stack.key(["tts", "sessions"]);
    const rowCount = async () =>
      Number((await stack.database.query<{ n: number }>(sql`select count(*)::int as n from tts_jobs`))[0].n);
    try {
      await t.step("GET /v1/voices: every engine, flite:rms the default with exact timings", async () => {
        const r = await api(stack, "GET", "/v1/voices");
        assert.equal(r.status, 200);
        const list = r.body as VoiceList;
        assert.equal(list.default, "flite:rms");
        assert.equal(list.object, "list");
        const rms = list.data.find((v) => v.id === "flite:rms")!;
        assert.deepEqual([rms.engine, rms.voice, rms.sample_rate, rms.timings, rms.gender], [
          "flite",
          "rms",
          16000,
          "exact",
          "male",
        ]);
        assert.ok(rms.openai_aliases.includes("alloy"));
        assert.ok(list.data.some((v) => v.id === "espeak:de"));
        assert.ok(list.data.some((v) => v.id === "vits:default" && v.timings === "estimated"));
        // every OpenAI name selects exactly one voice per engine that has a column for it
        for (const name of ["alloy", "nova", "onyx"]) {
          assert.equal(
            list.data.filter((v) => v.engine === "flite" && v.openai_aliases.includes(name)).length,
            1,
          );
        }
      });

      await t.step(
        "unknown voices: session options (JSON and SDP query) and jobs are 400 naming /v1/voices",
        async () => {
          const j = await api(stack, "POST", "/v1/sessions", {
            key,
            json: { sdp: AUDIO_OFFER, options: { voice: "klingon" } },
          });
          assert.equal(j.status, 400, j.text);
          assert.match(j.text, /GET \/v1\/voices/);
          const q = await api(stack, "POST", "/v1/sessions?voice=flite:xx&speed=1.5", {
            key,
            body: AUDIO_OFFER,
            headers: { "content-type": "application/sdp" },
          });
          assert.equal(q.status, 400, q.text);
          assert.match(q.text, /GET \/v1\/voices/);
          const s = await api(stack, "POST", "/v1/sessions", {
            key,
            json: { sdp: AUDIO_OFFER, options: { speed: 3 } },
          });
          assert.equal(s.status, 400, s.text);
          const job = await api(stack, "POST", "/v1/tts/jobs", {
            key,
            json: { text: "hi", voice: "klingon" },
          });
          assert.equal(job.status, 400);
          assert.equal((job.body as { error: { code: string } }).error.code, "unknown_voice");
          assert.match(job.text, /GET \/v1\/voices/);
          const batch = await api(stack, "POST", "/v1/tts/batches", {
            key,
            json: { texts: ["a"], voice: "x:y" },
          });
          assert.equal(batch.status, 400);
          assert.match(batch.text, /GET \/v1\/voices/);
        },
      );

      await t.step("300 generated bad SSML/text cases: 4xx JSON errors only, no job rows", async () => {
        const before = await rowCount();
        const statuses = new Map<number, number>();
        for (const c of badCases(300)) {
          const r = await api(stack, "POST", "/v1/tts/jobs", { key, json: c.json });
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          assert.ok(
            r.status >= 400 && r.status < 500,
            `${c.name} ${JSON.stringify(c.json).slice(0, 120)}: ${r.status}`,
          );
          const code = (r.body as { error?: { code?: string } })?.error?.code;
          assert.ok(code, `${c.name}: error body ${r.text.slice(0, 200)}`);
          if (c.json.ssml && code === "invalid_ssml") assert.match(r.text, /at character \d+/, c.name);
        }
        assert.equal(await rowCount(), before, "no job row from a refused submit");
      });

      // the synthesis workers start only now: validation needs none, and a loaded machine starts them slowly
      synth = await PoolSynthesizer.create({ workers: 1, tts: ttsConfig(parseConfig({})) });
      worker = await TtsJobWorker.start(stack.database, {
        nodeId: "test-origin",
        concurrency: 1,
        leaseMs: 5000,
        pollMs: 200,
        order: "fair",
        maxAttempts: 2,
        synth,
      });
      await stack.startOrigin({ components: [worker] });

      await t.step(
        "an SSML job at speed 1.5 in flite:rms: stored normalised, synthesized, no markup spoken",
        async () => {
          const text = `<speak>Hello <break time="300ms"/> <prosody rate="slow">world</prosody>. ` +
            `<say-as interpret-as="characters">abc</say-as> &amp; <sub alias="Doctor">Dr.</sub> Smith.</speak>`;
          const sub = await api(stack, "POST", "/v1/tts/jobs", {
            key,
            json: { text, ssml: true, speed: 1.5 },
          });
          assert.equal(sub.status, 202, sub.text);
          const id = (sub.body as TtsJobCreated).id;
          let job: TtsJob | null = null;
          for (let i = 0; i < 600; i++) {
            job = (await api(stack, "GET", `/v1/tts/jobs/${id}`, { key })).body as TtsJob;
            if (["succeeded", "failed"].includes(job.status)) break;
            await new Promise((r) => setTimeout(r, 100));
          }
          assert.equal(job!.status, "succeeded", job!.error ?? "");
          assert.deepEqual([job!.engine, job!.voice, job!.speed, job!.ssml], ["flite", "rms", 1.5, true]);
          assert.ok(job!.progress.audio_seconds > 0.8, `audio ${job!.progress.audio_seconds} s`);
          const chunks = await stack.database.query<{ text: string }>(
            sql`select text from tts_chunks where job_id = ${id} order by idx`,
          );
          for (const c of chunks) {
            assert.doesNotMatch(c.text, /say-as|<sub|alias/, "chunks hold regenerated markup only");
          }
        },
      );
    } finally {
      await worker?.close();
      await stack.close();
      await synth?.close();
    }
  },
});
