/**
 * HTTP plumbing shared by the edge and origin Hono apps: request ids, JSON access logs, request metrics, the
 * one error shape, JSON body parsing with limits. Routes throw ApiError; nothing else reaches clients.
 */
import { ForbiddenKeyError, parseClientJson } from "../protocol/json.ts";
import type { Context, Hono, MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { ApiError, errorBody } from "./errors.ts";
import type { Logger } from "./log.ts";
import { registry } from "./metrics.ts";

export const REQUEST_ID_HEADER = "x-request-id";

const httpRequests = registry.counter("parley_http_requests_total", "HTTP requests by app, route and status");
const httpDuration = registry.histogram(
  "parley_http_request_duration_seconds",
  "HTTP request latency by route",
);

export type AppVariables = { requestId: string; log: Logger };

/** Request id (propagated from the caller when well-formed), per-request logger, metrics, access log. */
export function observe(app: string, log: Logger): MiddlewareHandler<{ Variables: AppVariables }> {
  return async (c, next) => {
    const incoming = c.req.header(REQUEST_ID_HEADER);
    const requestId = incoming && /^[A-Za-z0-9._-]{8,64}$/.test(incoming) ? incoming : crypto.randomUUID();
    c.set("requestId", requestId);
    const reqLog = log.child({ request_id: requestId });
    c.set("log", reqLog);
    const t0 = performance.now();
    try {
      await next();
    } finally {
      c.header(REQUEST_ID_HEADER, requestId);
      // routePath is the matched pattern (/v1/sessions/:id), keeping label cardinality bounded.
      const route = c.req.routePath || "unmatched";
      const status = c.res.status;
      const seconds = (performance.now() - t0) / 1000;
      httpRequests.inc({ app, method: c.req.method, route, status });
      httpDuration.observe(seconds, { app, route });
      if (!c.req.path.endsWith("/metrics") && !c.req.path.endsWith("z")) {
        reqLog.info("http", {
          app,
          method: c.req.method,
          path: c.req.path,
          status,
          ms: Math.round(seconds * 1000),
        });
      }
    }
  };
}

/**
 * Install the one error shape: ApiError as-is, Hono's HTTPExceptions mapped, `mapError`'s ApiError for errors it
 * recognizes (the apps map "database unavailable" to 503), anything else → 500 (logged).
 */
export function installErrorHandling<V extends AppVariables>(
  app: Hono<{ Variables: V }>,
  log: Logger,
  mapError: (err: unknown) => ApiError | undefined = () => undefined,
): void {
  app.notFound((c) => c.json(errorBody("not_found", `no route for ${c.req.method} ${c.req.path}`), 404));
  app.onError((err, c) => {
    if (!(err instanceof ApiError)) err = mapError(err) ?? err;
    if (err instanceof ApiError) {
      for (const [k, v] of Object.entries(err.headers)) c.header(k, v);
      return c.json(err.toJSON(), err.status as 400);
    }
    if (err instanceof HTTPException) {
      const status = err.status;
      const code = status === 413 ? "payload_too_large" : status === 401 ? "unauthorized" : "bad_request";
      return c.json(errorBody(code, err.message || "bad request"), status);
    }
    ((c.var as AppVariables).log ?? log).error("unhandled error", { err, path: c.req.path });
    return c.json(errorBody("internal", "internal error"), 500);
  });
}

/** Read at most `limit` bytes of the body; 413 beyond (checks Content-Length first, then counts while reading). */
export async function readBodyLimited(c: Context, limit: number): Promise<Uint8Array> {
  const declared = c.req.header("content-length");
  if (declared !== undefined && Number(declared) > limit) {
    throw new ApiError(413, "payload_too_large", `request body exceeds ${limit} bytes`);
  }
  const body = c.req.raw.body;
  if (!body) return new Uint8Array();
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw new ApiError(413, "payload_too_large", `request body exceeds ${limit} bytes`);
    }
    parts.push(value);
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

/** Parse a JSON object body (400 invalid_json / 415 wrong type / 413 too large). */
export async function readJson(c: Context, limit: number): Promise<unknown> {
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/(.+\+)?json\b/i.test(type)) {
    throw new ApiError(415, "unsupported_media_type", "expected Content-Type: application/json");
  }
  const bytes = await readBodyLimited(c, limit);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new ApiError(400, "invalid_json", "body is not valid UTF-8");
  }
  try {
    return parseClientJson(text);
  } catch (e) {
    if (e instanceof ForbiddenKeyError) throw new ApiError(400, "validation_failed", e.message);
    throw new ApiError(400, "invalid_json", "body is not valid JSON");
  }
}

/** zod issues → one readable 400. */
export function validationError(issues: Array<{ path: PropertyKey[]; message: string }>): ApiError {
  const msg = issues.slice(0, 5).map((i) => `${i.path.map(String).join(".") || "body"}: ${i.message}`).join(
    "; ",
  );
  return new ApiError(400, "validation_failed", msg);
}
