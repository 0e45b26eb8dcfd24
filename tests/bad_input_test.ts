/**
 * Generated bad input over EVERY public route: the routes are read from the running edge's GET /openapi.json,
 * so a new route is covered as soon as it is documented. Each request fills the operation's documented path,
 * query, header and body parameters with values from the database's edges (impossible calendar dates, years 0
 * and 10000, numbers past bigint, non-UUIDs, NUL and other control characters, lone surrogates, huge strings)
 * and arbitrary unicode. Asserted for every answer: no 5xx; every 4xx is JSON `{error:{code,message}}`; a 4xx
 * leaves no row behind (row counts of every tenant-visible table are unchanged, sessions other than closed).
 * The cases the reliability review found first run explicitly, then ≥ 500 generated ones.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { sql } from "drizzle-orm";
import { appendEvent, markActive, markClosed } from "../db/sessions.ts";
import { docsRoutes } from "../edge/openapi.ts";
import { historyRoutes } from "../edge/routes/history.ts";
import { ttsRoutes } from "../edge/routes/tts.ts";
import { AUDIO_OFFER, rejectingService, startStack } from "./harness.ts";

const GENERATED_RUNS = 600;

const b64url = (s: string) => btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
const sessionCursor = (t: string, id: string = crypto.randomUUID()) => b64url(JSON.stringify([t, id]));

/** Values at the edges of PostgreSQL's domains. */
const EDGE_VALUES = [
  "2024-13-45T00:00:00Z",
  "2024-02-31T00:00:00Z",
  "0000-01-01T00:00:00Z",
  "9999-12-31T23:59:59Z",
  "10000-01-01T00:00:00Z",
  "2024-01-01T24:00:00Z",
  "2024-01-01T00:00:00+25:00",
  sessionCursor("2024-13-45T00:00:00.000000Z"),
  sessionCursor("2024-02-31T00:00:00.000000Z"),
  sessionCursor("0000-01-01T00:00:00.000000Z"),
  sessionCursor("2024-01-01T00:00:00.000000Z", "not-a-uuid"),
  `99999999999999999999_${crypto.randomUUID()}`,
  `9223372036854775807_${crypto.randomUUID()}`,
  `1_${"z".repeat(36)}`,
  `1_${"-".repeat(36)}`,
  "9223372036854775808",
  "-9223372036854775809",
  "1e400",
  "NaN",
  "-0",
  "0",
  "-1",
  "2147483648",
  "en\u0000",
  "\u0000",
  "a\u0000b",
  "\ud800",
  "%00",
  "\t",
  "é",
  "x".repeat(5000),
  "__proto__",
  "' or 1=1 --",
];

const value = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...EDGE_VALUES) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 12 }) },
);
const jsonValue = fc.oneof(
  { weight: 3, arbitrary: value },
  {
    weight: 1,
    arbitrary: fc.constantFrom(null, true, 0, -1, 1e308, 2 ** 63, [], {}, ["\u0000"], { a: "\u0000" }),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);

interface Param {
  name: string;
  in: "path" | "query" | "header";
}
interface Op {
  method: string;
  path: string;
  params: Param[];
  bodyTypes: string[];
  bodyKeys: string[];
}

type Doc = {
  paths: Record<
    string,
    Record<string, {
      parameters?: Param[];
      requestBody?: { content: Record<string, { schema?: unknown }> };
    }>
  >;
  components?: { schemas?: Record<string, unknown> };
};

function propertiesOf(doc: Doc, schema: unknown, depth = 0): string[] {
  if (!schema || typeof schema !== "object" || depth > 4) return [];
  const s = schema as Record<string, unknown>;
  if (typeof s.$ref === "string") {
    return propertiesOf(doc, doc.components?.schemas?.[s.$ref.split("/").pop()!], depth + 1);
  }
  const own = s.properties ? Object.keys(s.properties as object) : [];
  const nested = [s.anyOf, s.oneOf, s.allOf].flatMap((v) =>
    Array.isArray(v) ? v.flatMap((x) => propertiesOf(doc, x, depth + 1)) : []
  );
  return [...new Set([...own, ...nested])];
}

function operations(doc: Doc): Op[] {
  const ops: Op[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const content = op.requestBody?.content ?? {};
      ops.push({
        method: method.toUpperCase(),
        path,
        params: op.parameters ?? [],
        bodyTypes: Object.keys(content),
        bodyKeys: Object.values(content).flatMap((c) => propertiesOf(doc, c.schema)),
      });
    }
  }
  return ops;
}

interface Request {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/** Sends one request; a streaming 2xx (SSE, audio) is cancelled once its headers arrived. */
async function send(base: string, r: Request): Promise<{ status: number; text: string; type: string }> {
  const res = await fetch(base + r.path, {
    method: r.method,
    headers: r.headers,
    body: r.body,
    signal: AbortSignal.timeout(30_000),
  });
  const type = res.headers.get("content-type") ?? "";
  if (res.status < 300 && /event-stream|audio|octet-stream/.test(type)) {
    await res.body?.cancel();
    return { status: res.status, text: "", type };
  }
  return { status: res.status, text: await res.text(), type };
}

Deno.test("property: generated bad input to every documented route never gets a 5xx nor leaves a row", async () => {
  const s = await startStack({
    routes: [historyRoutes, ttsRoutes, docsRoutes],
    config: { RATE_LIMIT_RPS: "100000", RATE_LIMIT_BURST: "100000", TTS_MAX_TEXT_CHARS: "2000" },
  });
  await s.startOrigin({ sessions: rejectingService() });
  const user = await s.key(["sessions", "tts", "transcripts:read"]);
  const statuses = new Map<number, number>();
  const perRoute = new Map<string, number>();
  try {
    const [row] = await s.database.query<{ id: string }>(
      sql`insert into sessions (tenant_id) values (${s.tenantId}::uuid) returning id`,
    );
    await markActive(s.database, row.id);
    await appendEvent(s.database, row.id, {
      type: "transcript",
      segment_id: 1,
      status: "confirmed",
      alternatives: [{ text: "hello world", score: 1 }],
      stable_text: "hello world",
      unstable_text: "",
      start_ms: 0,
      end_ms: 500,
      latency_ms: 10,
    });
    await markClosed(s.database, row.id, "client_hangup");
    const job = await fetch(`${s.url}/v1/tts/jobs`, {
      method: "POST",
      headers: { authorization: `Bearer ${s.adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ text: "hello" }),
    });
    assert.equal(job.status, 202, await job.clone().text());
    const jobId = ((await job.json()) as { id: string }).id;
    const ids = [row.id, jobId, user.id, crypto.randomUUID(), "not-a-uuid", "%00", "0", "x".repeat(300)];

    const doc = (await (await fetch(`${s.url}/openapi.json`)).json()) as Doc;
    const ops = operations(doc);
    assert.ok(ops.length >= 20, `only ${ops.length} operations documented`);

    const counts = async () => {
      const [c] = await s.database.query<Record<string, number>>(sql`select
        (select count(*)::int from sessions where state <> 'closed') as sessions,
        (select count(*)::int from session_events) as events,
        (select count(*)::int from tts_jobs) as jobs,
        (select count(*)::int from tts_chunks) as chunks,
        (select count(*)::int from api_keys) as keys,
        (select count(*)::int from tenants) as tenants`);
      return c;
    };

    const check = async (r: Request) => {
      const before = await counts();
      const res = await send(s.url, r);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const label = `${r.method} ${r.path.slice(0, 160)} body=${(r.body ?? "").slice(0, 160)} ` +
        `headers=${JSON.stringify(r.headers).slice(0, 200)}`;
      assert.ok(res.status < 500, `${label} → ${res.status} ${res.text.slice(0, 300)}`);
      if (res.status >= 400) {
        const body = JSON.parse(res.text) as { error?: { code?: unknown; message?: unknown } };
        assert.equal(typeof body.error?.code, "string", `${label}: ${res.text.slice(0, 200)}`);
        assert.equal(typeof body.error?.message, "string", label);
        assert.deepEqual(await counts(), before, `${label} → ${res.status} changed rows`);
      }
    };

    const auth = (key = s.adminKey) => ({ authorization: `Bearer ${key}` });
    const json = { ...auth(), "content-type": "application/json" };
    // The review's cases, explicitly.
    const explicit: Request[] = [
      ...["2024-13-45T00:00:00.000000Z", "2024-02-31T00:00:00.000000Z", "0000-01-01T00:00:00.000000Z"].map(
        (t) => ({ method: "GET", path: `/v1/sessions?cursor=${sessionCursor(t)}`, headers: auth() }),
      ),
      ...[`99999999999999999999_${crypto.randomUUID()}`, `1_${"z".repeat(36)}`, `1_${"-".repeat(36)}`].map(
        (c) => ({ method: "GET", path: `/v1/tts/jobs?cursor=${c}`, headers: auth() }),
      ),
      ...["from", "to"].flatMap((k) => [
        { method: "GET", path: `/v1/sessions?${k}=0000-01-01T00:00:00Z`, headers: auth() },
        { method: "GET", path: `/v1/transcripts/search?q=hello&${k}=0000-01-01T00:00:00Z`, headers: auth() },
      ]),
      ...["language", "voice"].flatMap((k) => [
        {
          method: "POST",
          path: "/v1/sessions",
          headers: json,
          body: JSON.stringify({ sdp: AUDIO_OFFER, options: { [k]: "en\u0000x" } }),
        },
        {
          method: "POST",
          path: `/v1/sessions?${k}=en%00x`,
          headers: { ...auth(), "content-type": "application/sdp" },
          body: AUDIO_OFFER,
        },
      ]),
      {
        method: "POST",
        path: "/v1/keys",
        headers: json,
        body: JSON.stringify({ name: "a\u0000b", scopes: ["tts"] }),
      },
      // Control bytes other than HTAB never reach the application (the HTTP layer refuses the request line);
      // HTAB and non-ASCII bytes do, and get the JSON 400.
      ...["a\tb", "é", "x".repeat(201), ""].map((k) => ({
        method: "POST",
        path: "/v1/tts/jobs",
        headers: { ...json, "idempotency-key": k },
        body: JSON.stringify({ text: "hi" }),
      })),
    ];
    for (const r of explicit) {
      await check(r);
      const res = await send(s.url, r);
      assert.equal(res.status, 400, `${r.method} ${r.path} ${r.body ?? ""} → ${res.status} ${res.text}`);
    }

    let generated = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ops),
        fc.constantFrom(undefined, s.adminKey, user.key),
        fc.dictionary(fc.string({ maxLength: 4 }), jsonValue, { maxKeys: 2 }),
        fc.array(fc.tuple(fc.nat(), value), { maxLength: 5 }),
        fc.array(jsonValue, { maxLength: 6 }),
        fc.nat(),
        fc.boolean(),
        async (op, key, extraBody, paramValues, bodyValues, pick, asSdp) => {
          let path = op.path.replace(/\{[^}]+\}/g, () => encodeURIComponent(ids[pick % ids.length]));
          const headers: Record<string, string> = key ? auth(key) : {};
          const query = new URLSearchParams();
          for (const [i, v] of paramValues) {
            const p = op.params.filter((x) => x.in !== "path")[i % Math.max(1, op.params.length)];
            if (!p) continue;
            if (p.in === "query") query.set(p.name, v);
            else if (/^[\t\x20-\x7e\x80-\xff]*$/.test(v)) headers[p.name] = v; // what the HTTP layer lets through
          }
          if (query.size) path += `?${query}`;
          let body: string | undefined;
          if (op.bodyTypes.length) {
            if (asSdp && op.bodyTypes.includes("application/sdp")) {
              headers["content-type"] = "application/sdp";
              body = AUDIO_OFFER;
            } else {
              headers["content-type"] = "application/json";
              const o: Record<string, unknown> = { ...extraBody };
              op.bodyKeys.forEach((k, i) => {
                if (i < bodyValues.length) o[k] = bodyValues[i];
              });
              if (op.bodyKeys.includes("sdp") && pick % 2 === 0) o.sdp = AUDIO_OFFER;
              body = JSON.stringify(o);
            }
          }
          perRoute.set(`${op.method} ${op.path}`, (perRoute.get(`${op.method} ${op.path}`) ?? 0) + 1);
          await check({ method: op.method, path, headers, body });
          generated++;
        },
      ),
      { numRuns: GENERATED_RUNS, seed: 20 },
    );
    assert.equal(generated, GENERATED_RUNS);
    for (const op of ops) {
      assert.ok(perRoute.has(`${op.method} ${op.path}`), `never tried ${op.method} ${op.path}`);
    }
    console.log(
      `bad input: ${explicit.length} explicit + ${generated} generated requests over ${ops.length} operations;`,
      `statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`,
    );
  } finally {
    await s.close();
  }
});
