/** Error body shape of every public and internal HTTP API response (see lib/errors.ts for the thrower). */
export interface ApiErrorBody {
  error: { code: string; message: string };
}

/**
 * API key scopes. `admin` implies every other scope within its tenant and key management. `rooms:view` only
 * watches and listens to rooms (a viewer token narrowed to one room); creating rooms and tracks needs `sessions`.
 */
export const SCOPES = ["sessions", "tts", "transcripts:read", "rooms:view", "admin"] as const;
export type Scope = typeof SCOPES[number];
