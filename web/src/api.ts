/// <reference lib="dom" />
/**
 * The page's API client. Same origin as the API (no CORS). The API key, if the user typed one, is used for
 * exactly one kind of request: minting a browser token (POST /v1/tokens). Everything else carries the token.
 * The key lives only in memory (gone on reload); the token is kept in sessionStorage (gone with the tab).
 */
import type { ApiErrorBody } from "../../protocol/api.ts";

const TOKEN_KEY = "parley.token";
const TOKEN_EXP_KEY = "parley.token_expires_at";
const SCOPES = ["sessions", "tts", "transcripts:read"];

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

let apiKey: string | null = null;
let token: string | null = sessionStorage.getItem(TOKEN_KEY);
let tokenExpiresAt = Number(sessionStorage.getItem(TOKEN_EXP_KEY) ?? 0);
let refreshTimer: ReturnType<typeof setTimeout> | undefined;
const listeners: Array<(signedIn: boolean) => void> = [];

export function onAuthChange(fn: (signedIn: boolean) => void): void {
  listeners.push(fn);
}

export function signedIn(): boolean {
  return token !== null && (tokenExpiresAt === 0 || tokenExpiresAt > Date.now());
}

export function currentToken(): string | null {
  return signedIn() ? token : null;
}

function setToken(t: string, expiresAt: number): void {
  token = t;
  tokenExpiresAt = expiresAt;
  sessionStorage.setItem(TOKEN_KEY, t);
  sessionStorage.setItem(TOKEN_EXP_KEY, String(expiresAt));
  clearTimeout(refreshTimer);
  // With the key in memory, mint a fresh token two minutes before this one expires.
  if (apiKey && expiresAt) {
    refreshTimer = setTimeout(
      () => void mintToken().catch(() => {}),
      Math.max(5_000, expiresAt - Date.now() - 120_000),
    );
  }
  for (const l of listeners) l(true);
}

export function signOut(): void {
  apiKey = null;
  token = null;
  tokenExpiresAt = 0;
  clearTimeout(refreshTimer);
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(TOKEN_EXP_KEY);
  for (const l of listeners) l(false);
}

/** Decode a JWT's `exp` (seconds) without verifying it: only to know when to ask again. */
function jwtExpiry(t: string): number {
  try {
    const part = t.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const exp = JSON.parse(atob(part)).exp;
    return typeof exp === "number" ? exp * 1000 : 0;
  } catch {
    return 0;
  }
}

/** Use a browser token handed over in the URL (#token=…). */
export function useToken(t: string): void {
  apiKey = null;
  setToken(t, jwtExpiry(t));
}

async function errorOf(res: Response): Promise<ApiError> {
  let code = `http_${res.status}`;
  let message = res.statusText || `HTTP ${res.status}`;
  try {
    const body = (await res.json()) as ApiErrorBody;
    if (body?.error) {
      code = body.error.code;
      message = body.error.message;
    }
  } catch { /* not JSON */ }
  return new ApiError(res.status, code, message);
}

async function mintToken(): Promise<void> {
  if (!apiKey) throw new ApiError(401, "unauthorized", "sign in again");
  const ask = (scopes?: string[]) =>
    fetch("/v1/tokens", {
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      body: JSON.stringify(scopes ? { scopes, ttl_s: 3600 } : { ttl_s: 3600 }),
    });
  let res = await ask(SCOPES);
  // A key without every scope: take what it has.
  if (res.status === 403) res = await ask();
  if (!res.ok) throw await errorOf(res);
  const body = (await res.json()) as { token: string; expires_at: string };
  setToken(body.token, Date.parse(body.expires_at) || jwtExpiry(body.token));
}

/** Sign in with an API key: mint a browser token with it; the key stays in memory only. */
export async function signInWithKey(key: string): Promise<void> {
  apiKey = key.trim();
  try {
    await mintToken();
  } catch (e) {
    apiKey = null;
    throw e;
  }
}

/** fetch() with the browser token; API errors become ApiError. One retry after re-minting on 401. */
export async function request(path: string, init: RequestInit = {}): Promise<Response> {
  const go = () => {
    const headers = new Headers(init.headers);
    const t = currentToken();
    if (t) headers.set("authorization", `Bearer ${t}`);
    return fetch(path, { ...init, headers });
  };
  let res = await go();
  if (res.status === 401 && apiKey) {
    await mintToken();
    res = await go();
  }
  if (res.status === 401) {
    const err = await errorOf(res);
    signOut();
    throw err;
  }
  if (!res.ok) throw await errorOf(res);
  return res;
}

export async function getJson<T>(path: string): Promise<T> {
  return (await (await request(path)).json()) as T;
}

export async function sendJson<T>(method: string, path: string, body: unknown): Promise<T> {
  const res = await request(path, {
    method,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return (res.status === 204 ? undefined : await res.json()) as T;
}

/**
 * Server-Sent Events over fetch (EventSource cannot send an Authorization header). Calls onEvent for each
 * event until the stream ends or `signal` aborts. Returns when the stream closes.
 */
export async function sse(
  path: string,
  onEvent: (event: string, data: string) => void,
  signal: AbortSignal,
): Promise<void> {
  const res = await request(path, { headers: { accept: "text/event-stream" }, signal });
  if (!res.body) return;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  let event = "message";
  let data: string[] = [];
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let nl: number;
      while ((nl = buf.search(/\r?\n/)) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf[nl] === "\r" ? 2 : 1));
        if (line === "") {
          if (data.length) onEvent(event, data.join("\n"));
          event = "message";
          data = [];
        } else if (line.startsWith(":")) {
          continue;
        } else {
          const i = line.indexOf(":");
          const field = i < 0 ? line : line.slice(0, i);
          const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
          if (field === "event") event = val;
          else if (field === "data") data.push(val);
        }
      }
    }
  } catch (e) {
    if (!signal.aborted) throw e;
  } finally {
    reader.releaseLock();
  }
}
