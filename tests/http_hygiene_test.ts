import assert from "node:assert/strict";
import fc from "fast-check";
import { api, rejectingService, startStack } from "./harness.ts";

Deno.test("http hygiene: JSON 404, invalid JSON 400, wrong type 415, body limits 413, no stack traces", async () => {
  const s = await startStack();
  try {
    const r404 = await api(s, "GET", "/nope");
    assert.equal(r404.status, 404);
    assert.equal((r404.body as { error: { code: string } }).error.code, "not_found");
    const bad = await api(s, "POST", "/v1/tokens", {
      key: s.adminKey,
      body: "{not json",
      headers: { "content-type": "application/json" },
    });
    assert.equal(bad.status, 400);
    assert.equal((bad.body as { error: { code: string } }).error.code, "invalid_json");
    const wrongType = await api(s, "POST", "/v1/tokens", {
      key: s.adminKey,
      body: "x",
      headers: { "content-type": "text/plain" },
    });
    assert.equal(wrongType.status, 415);
    const big = await api(s, "POST", "/v1/sessions", {
      key: s.adminKey,
      body: "v=0\r\n" + "a=x\r\n".repeat(20000),
      headers: { "content-type": "application/sdp" },
    });
    assert.equal(big.status, 413);
    const noAudio = await api(s, "POST", "/v1/sessions", {
      key: s.adminKey,
      body: "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:x\r\n",
      headers: { "content-type": "application/sdp" },
    });
    assert.equal(noAudio.status, 400);
    assert.match((noAudio.body as { error: { message: string } }).error.message, /audio/);
    const patch = await api(s, "PATCH", `/v1/sessions/${crypto.randomUUID()}`, {
      key: s.adminKey,
      body: "x",
    });
    assert.equal(patch.status, 405);
    for (const r of [r404, bad, wrongType, big, noAudio, patch]) assert.ok(!r.text.includes("at "), r.text);
  } finally {
    await s.close();
  }
});

Deno.test("property: thousands of random requests to every public route never get a 5xx", async () => {
  const s = await startStack({ config: { RATE_LIMIT_RPS: "100000", RATE_LIMIT_BURST: "100000" } });
  await s.startOrigin({ sessions: rejectingService() });
  const user = await s.key(["sessions", "tts", "transcripts:read"]);
  const sid = crypto.randomUUID();
  const routes: Array<[string, string]> = [
    ["POST", "/v1/sessions"],
    ["GET", `/v1/sessions/${sid}`],
    ["DELETE", `/v1/sessions/${sid}`],
    ["PATCH", `/v1/sessions/${sid}`],
    ["POST", "/v1/tokens"],
    ["GET", "/v1/keys"],
    ["POST", "/v1/keys"],
    ["DELETE", `/v1/keys/${sid}`],
    ["GET", "/v1/nodes"],
    ["GET", "/healthz"],
    ["GET", "/readyz"],
    ["GET", "/metrics"],
  ];
  const failures: string[] = [];
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        fc.oneof(
          fc.constant(undefined),
          fc.constant(s.adminKey),
          fc.constant(user.key),
          fc.string({ maxLength: 80 }),
        ),
        fc.constantFrom(
          "application/json",
          "application/sdp",
          "text/plain",
          "",
          "application/json; charset=utf-8",
        ),
        fc.oneof(
          fc.json({ maxDepth: 3 }),
          fc.string({ maxLength: 300 }),
          fc.uint8Array({ maxLength: 300 }).map((b) => new TextDecoder().decode(b)),
          fc.record({ sdp: fc.string(), options: fc.dictionary(fc.string(), fc.jsonValue()) }).map((o) =>
            JSON.stringify(o)
          ),
          fc.record({ scopes: fc.array(fc.string()), ttl_s: fc.integer() }).map((o) => JSON.stringify(o)),
          fc.constant("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:x\r\n"),
        ),
        fc.oneof(fc.constant(""), fc.webPath(), fc.string({ maxLength: 20 }).map(encodeURIComponent)),
        fc.dictionary(
          fc.constantFrom("x-request-id", "accept", "x-foo", "content-length-ish"),
          fc.string({ maxLength: 40 }),
        ),
        async ([method, path], key, ctype, body, suffix, extra) => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(extra)) if (/^[\x20-\x7e]*$/.test(v)) headers[k] = v;
          if (ctype) headers["content-type"] = ctype;
          if (key !== undefined && /^[\x21-\x7e]*$/.test(key)) headers.authorization = `Bearer ${key}`;
          const p = suffix && Math.random() < 0.3 ? path + suffix : path;
          const res = await fetch(s.url + p, {
            method,
            headers,
            body: method === "GET" || method === "HEAD" ? undefined : body,
          });
          const text = await res.text();
          if (res.status >= 500) failures.push(`${method} ${p} → ${res.status} ${text.slice(0, 200)}`);
          if (res.status >= 400) {
            const j = JSON.parse(text);
            assert.equal(typeof j.error.code, "string");
            assert.equal(typeof j.error.message, "string");
          }
          return res.status < 500;
        },
      ),
      { numRuns: 2000, seed: 42 },
    );
    // The process (this test runner hosts edge + origin) is still serving.
    assert.equal((await api(s, "GET", "/healthz")).status, 200);
  } finally {
    await s.close();
  }
  assert.deepEqual(failures, []);
});
