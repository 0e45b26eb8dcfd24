/**
 * The one HTTP error type. Every 4xx/5xx leaving Parley has the body `{"error":{"code","message"}}`;
 * routes throw `ApiError`, the app's onError turns it into that shape and never leaks stack traces.
 */
export type ErrorCode =
  | "bad_request"
  | "invalid_json"
  | "validation_failed"
  | "unknown_voice"
  | "invalid_ssml"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "method_not_allowed"
  | "conflict"
  | "payload_too_large"
  | "unsupported_media_type"
  | "rate_limited"
  | "limit_exceeded"
  | "not_implemented"
  | "upgrade_required"
  | "no_origin_available"
  | "origin_error"
  | "unavailable"
  | "internal";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }

  toJSON(): { error: { code: ErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

export function errorBody(code: ErrorCode, message: string): { error: { code: ErrorCode; message: string } } {
  return { error: { code, message } };
}
