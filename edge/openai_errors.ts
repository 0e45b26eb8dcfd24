/**
 * Errors of the OpenAI-compatible routes in OpenAI's shape, `{error:{message,type,param,code}}`: a superset of
 * Parley's `{error:{code,message}}` (same `code`, same `message`), so both kinds of client read them. Routes
 * throw `ParamError` to name the offending field; any other ApiError gets `param: null`.
 */
import type { MiddlewareHandler } from "hono";
import { ApiError, type ErrorCode } from "../lib/errors.ts";
import type { OpenAiError } from "../protocol/openai.ts";

/** A request field is wrong: 400 (or `status`) naming the field in `param`. */
export class ParamError extends ApiError {
  constructor(readonly param: string, message: string, status = 400, code: ErrorCode = "validation_failed") {
    super(status, code, `${param}: ${message}`);
    this.name = "ParamError";
  }
}

function typeOf(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

/** Rewrites every JSON error answer of the routes it wraps (including auth and rate-limit ones) to OpenAI's shape. */
export function openAiErrors(): MiddlewareHandler {
  return async (c, next) => {
    await next();
    const res = c.res;
    if (res.status < 400 || !res.headers.get("content-type")?.includes("application/json")) return;
    let body: { error?: { code?: string; message?: string } };
    try {
      body = await res.clone().json();
    } catch {
      return;
    }
    if (!body.error?.code || typeof body.error.message !== "string") return;
    const err = c.error;
    const out: OpenAiError = {
      error: {
        message: body.error.message,
        type: typeOf(res.status),
        param: err instanceof ParamError ? err.param : null,
        code: body.error.code,
      },
    };
    const headers = new Headers(res.headers);
    headers.delete("content-length");
    c.res = new Response(JSON.stringify(out), { status: res.status, headers });
  };
}
