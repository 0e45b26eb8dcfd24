/**
 * The OpenAPI document covers every public route the edge registers, is structurally sound (unique operation
 * ids, path parameters declared, every $ref resolves), reflects the validating zod schemas, and /docs serves
 * Swagger UI from the local npm package.
 */
import assert from "node:assert/strict";
import { createEdgeApp, type RouteGroup } from "../edge/app.ts";
import { docsRoutes } from "../edge/openapi.ts";
import { historyRoutes } from "../edge/routes/history.ts";
import { ttsRoutes } from "../edge/routes/tts.ts";
import { openAiRoutes } from "../edge/routes/openai.ts";
import { api, startStack } from "./harness.ts";

type Doc = {
  openapi: string;
  paths: Record<string, Record<string, Record<string, unknown>>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
};

/** Route groups outside the public API document (the web client's pages and assets). */
const UNDOCUMENTED = [
  /^\/$/,
  /^\/docs\/(init\.js|:file)$/,
  /^\/(app|web|static|assets)\b/,
  /\.(js|css|html|png)$/,
];

function refsIn(x: unknown, out: string[] = []): string[] {
  if (Array.isArray(x)) x.forEach((v) => refsIn(v, out));
  else if (x && typeof x === "object") {
    for (const [k, v] of Object.entries(x)) {
      if (k === "$ref" && typeof v === "string") out.push(v);
      else refsIn(v, out);
    }
  }
  return out;
}

export async function checkOpenApi(groups: RouteGroup[]): Promise<void> {
  const s = await startStack({ routes: groups });
  try {
    const r = await api(s, "GET", "/openapi.json");
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /^application\/json/);
    const doc = r.body as Doc;
    assert.equal(doc.openapi, "3.1.0");

    // every registered public route is documented
    const app = createEdgeApp(s.edge.ctx, groups);
    const documented = new Set<string>();
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const m of Object.keys(ops)) documented.add(`${m.toUpperCase()} ${path}`);
    }
    const missing: string[] = [];
    for (const route of app.routes) {
      if (route.method === "ALL" || UNDOCUMENTED.some((re) => re.test(route.path))) continue;
      const key = `${route.method} ${route.path.replace(/:(\w+)/g, "{$1}")}`;
      if (!documented.has(key)) missing.push(key);
    }
    assert.deepEqual([...new Set(missing)], [], "routes missing from the OpenAPI document");

    // structure: unique operation ids, declared path params, resolvable refs, responses
    const ids = new Set<string>();
    for (const [path, ops] of Object.entries(doc.paths)) {
      const templated = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      for (const [method, op] of Object.entries(ops)) {
        const id = op.operationId as string;
        assert.ok(id && !ids.has(id), `duplicate or missing operationId at ${method} ${path}`);
        ids.add(id);
        const params = (op.parameters ?? []) as Array<{ name: string; in: string; required?: boolean }>;
        for (const name of templated) {
          assert.ok(
            params.some((p) => p.in === "path" && p.name === name && p.required),
            `${path}: {${name}}`,
          );
        }
        assert.ok(Object.keys(op.responses as object).length > 0);
        assert.ok(Array.isArray(op.tags) && (op.tags as string[]).length === 1);
      }
    }
    for (const ref of refsIn(doc)) {
      const m = /^#\/components\/schemas\/(\w+)$/.exec(ref);
      assert.ok(m && doc.components.schemas[m[1]], `unresolved $ref ${ref}`);
    }
    assert.ok(doc.components.securitySchemes.bearerAuth);

    // generated from the validating schemas
    const list = doc.paths["/v1/sessions"].get as {
      parameters: Array<{ name: string; schema: { maximum?: number } }>;
    };
    assert.equal(list.parameters.find((p) => p.name === "limit")?.schema.maximum, 200);
    const search = doc.paths["/v1/transcripts/search"].get as {
      parameters: Array<{ name: string; required: boolean }>;
    };
    assert.equal(search.parameters.find((p) => p.name === "q")?.required, true);
    const tokenBody = doc.components.schemas.TokenRequest as {
      properties: Record<string, { maximum?: number }>;
    };
    assert.equal(tokenBody.properties.ttl_s.maximum, 3600);
    const ttsBody = doc.components.schemas.CreateTtsBatch as {
      properties: Record<string, { maxItems?: number }>;
    };
    assert.equal(ttsBody.properties.texts.maxItems, 100);
    const offer = doc.paths["/v1/sessions"].post as { requestBody: { content: Record<string, unknown> } };
    assert.deepEqual(Object.keys(offer.requestBody.content).sort(), ["application/json", "application/sdp"]);

    // the interactive UI is served locally (no CDN)
    const html = await api(s, "GET", "/docs");
    assert.equal(html.status, 200);
    assert.match(html.text, /swagger-ui-bundle\.js/);
    assert.ok(!/https?:\/\//.test(html.text), "no external URLs in /docs");
    const js = await api(s, "GET", "/docs/swagger-ui-bundle.js");
    assert.equal(js.status, 200);
    assert.match(js.headers.get("content-type") ?? "", /javascript/);
    assert.ok(js.text.length > 500_000);
    const css = await api(s, "GET", "/docs/swagger-ui.css");
    assert.equal(css.status, 200);
    const init = await api(s, "GET", "/docs/init.js");
    assert.match(init.text, /\/openapi\.json/);
    assert.equal((await api(s, "GET", "/docs/..%2Fpackage.json")).status, 404);
    assert.equal((await api(s, "GET", "/docs/index.js")).status, 404);
  } finally {
    await s.close();
  }
}

Deno.test("openapi: whole public API documented, sound, and served with a local UI", async () => {
  await checkOpenApi([historyRoutes, docsRoutes, ttsRoutes, openAiRoutes]);
});
