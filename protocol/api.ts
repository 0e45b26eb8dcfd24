/** Error body shape of every public and internal HTTP API response (see lib/errors.ts for the thrower). */
export interface ApiErrorBody {
  error: { code: string; message: string };
}

/** API key scopes. `admin` implies every other scope within its tenant and key management. */
export const SCOPES = ["sessions", "tts", "transcripts:read", "admin"] as const;
export type Scope = typeof SCOPES[number];
