import assert from "node:assert/strict";
import { configureLogging } from "../lib/log.ts";
import { ApiError } from "../lib/errors.ts";
import type { SessionService } from "../origin/services.ts";
import { api, startStack } from "./harness.ts";

const OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" +
  "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n";

Deno.test("ops: request id propagates edge → origin in JSON logs; /metrics exposes request metrics", async () => {
  const lines: Record<string, unknown>[] = [];
  configureLogging({ level: "info", sink: (l) => lines.push(JSON.parse(l)) });
  const s = await startStack();
  try {
    const svc: SessionService = {
      create: () => Promise.reject(new ApiError(400, "bad_request", "nope")),
      get: () => null,
      say: () => Promise.resolve(null),
      end: () => Promise.resolve(null),
      load: 0,
      drain() {},
      close: () => Promise.resolve(),
    };
    await s.startOrigin({ sessions: svc });
    const rid = "test-req-" + crypto.randomUUID().slice(0, 8);
    const r = await api(s, "POST", "/v1/sessions", {
      key: s.adminKey,
      body: OFFER,
      headers: { "content-type": "application/sdp", "x-request-id": rid },
    });
    assert.equal(r.status, 400);
    assert.equal(r.headers.get("x-request-id"), rid);
    const http = lines.filter((l) => l.msg === "http" && l.request_id === rid);
    assert.deepEqual(http.map((l) => l.app).sort(), ["edge", "origin"]);
    for (const l of http) assert.ok(typeof l.ts === "string" && typeof l.status === "number");
    const m = await api(s, "GET", "/metrics");
    assert.equal(m.status, 200);
    assert.match(m.text, /parley_http_requests_total\{[^}]*route="\/v1\/sessions"[^}]*status="400"/);
    assert.match(m.text, /# TYPE parley_http_request_duration_seconds histogram/);
    assert.match(m.text, /parley_edge_origin_calls_total\{outcome="400"\}/);
  } finally {
    configureLogging({ level: "error", sink: (l) => console.error(l) });
    await s.close();
  }
});
