/**
 * The edge's client for origin internal APIs: signs every call (protocol/internal_auth.ts), propagates the
 * request id, applies a timeout, and tells "the origin never accepted this" (connection refused, timeout before
 * a response, 503 draining) apart from a real answer, so that session creation can retry on another origin
 * only when that is safe.
 */
import { SIGNATURE_HEADER, signRequest } from "../protocol/internal_auth.ts";
import { REQUEST_ID_HEADER } from "../lib/http.ts";
import { registry } from "../lib/metrics.ts";
import { ApiError } from "../lib/errors.ts";

const originCalls = registry.counter("parley_edge_origin_calls_total", "Edge → origin calls by outcome");

export class OriginUnreachableError extends Error {
  /** The call's timeout fired before an answer (as opposed to a refused or reset connection). */
  readonly timedOut: boolean;
  constructor(readonly nodeUrl: string, cause: unknown) {
    super(`origin ${nodeUrl} unreachable: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = "OriginUnreachableError";
    this.timedOut = cause instanceof DOMException &&
      (cause.name === "TimeoutError" || cause.name === "AbortError");
  }
}

/**
 * The edge's answer when an origin could not be reached or did not answer in time: 504 after a timeout, 502
 * otherwise, with the error body and a short Retry-After. Routes that can retry elsewhere catch the error first.
 */
export function originUnreachableResponse(err: unknown): ApiError | undefined {
  if (!(err instanceof OriginUnreachableError)) return undefined;
  const timedOut = err.timedOut;
  return new ApiError(
    timedOut ? 504 : 502,
    "origin_error",
    timedOut ? "the media node did not answer in time; retry" : "the media node could not be reached; retry",
    { "Retry-After": "1" },
  );
}

export interface OriginResponse {
  status: number;
  headers: Headers;
  body: Uint8Array;
  json<T>(): T;
}

export class OriginClient {
  constructor(readonly secret: string, private readonly timeoutMs = 15_000) {}

  /**
   * A signed call whose answer is read as a stream (long-running work such as file transcription): resolves
   * with the Response once its headers arrive; the timeout covers only that. Cancel its body to stop the work.
   */
  async open(
    nodeUrl: string,
    method: string,
    pathAndQuery: string,
    opts: { body?: Uint8Array; contentType?: string; requestId?: string; timeoutMs?: number } = {},
  ): Promise<Response> {
    const body = opts.body ?? new Uint8Array();
    const headers: Record<string, string> = {
      [SIGNATURE_HEADER]: await signRequest(this.secret, method, pathAndQuery, body),
    };
    if (opts.contentType) headers["content-type"] = opts.contentType;
    if (opts.requestId) headers[REQUEST_ID_HEADER] = opts.requestId;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), opts.timeoutMs ?? this.timeoutMs);
    try {
      const res = await fetch(new URL(pathAndQuery, nodeUrl), {
        method,
        headers,
        body: method === "GET" || method === "HEAD" ? undefined : body as Uint8Array<ArrayBuffer>,
        signal: abort.signal,
      });
      originCalls.inc({ outcome: String(res.status) });
      return res;
    } catch (e) {
      originCalls.inc({ outcome: "unreachable" });
      throw new OriginUnreachableError(nodeUrl, e);
    } finally {
      clearTimeout(timer);
    }
  }

  async call(
    nodeUrl: string,
    method: string,
    pathAndQuery: string,
    opts: { body?: Uint8Array | string; contentType?: string; requestId?: string; timeoutMs?: number } = {},
  ): Promise<OriginResponse> {
    const body = typeof opts.body === "string"
      ? new TextEncoder().encode(opts.body)
      : opts.body ?? new Uint8Array();
    const headers: Record<string, string> = {
      [SIGNATURE_HEADER]: await signRequest(this.secret, method, pathAndQuery, body),
    };
    if (opts.contentType) headers["content-type"] = opts.contentType;
    if (opts.requestId) headers[REQUEST_ID_HEADER] = opts.requestId;
    let res: Response;
    try {
      res = await fetch(new URL(pathAndQuery, nodeUrl), {
        method,
        headers,
        body: method === "GET" || method === "HEAD" ? undefined : body as Uint8Array<ArrayBuffer>,
        signal: AbortSignal.timeout(opts.timeoutMs ?? this.timeoutMs),
      });
    } catch (e) {
      originCalls.inc({ outcome: "unreachable" });
      throw new OriginUnreachableError(nodeUrl, e);
    }
    const bytes = new Uint8Array(await res.arrayBuffer());
    originCalls.inc({ outcome: String(res.status) });
    return {
      status: res.status,
      headers: res.headers,
      body: bytes,
      json<T>() {
        return JSON.parse(new TextDecoder().decode(bytes)) as T;
      },
    };
  }
}
