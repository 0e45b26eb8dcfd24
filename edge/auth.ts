/**
 * Edge authentication: `Authorization: Bearer <credential>` where the credential is either an API key
 * (`pk_…`, looked up by hash) or a browser token (a JWT minted by POST /v1/tokens, HS256, ≤ 1 h, narrowed to
 * a tenant, scopes and optionally one session). Tokens die with the key that minted them (revocation is checked).
 */
import type { MiddlewareHandler } from "hono";
import { sign, verify } from "hono/jwt";
import { type Database } from "../db/client.ts";
import { findActiveKey, findKeyById } from "../db/api_keys.ts";
import { ApiError } from "../lib/errors.ts";
import type { AppVariables } from "../lib/http.ts";
import type { Scope } from "../protocol/api.ts";

export interface Principal {
  kind: "key" | "token";
  tenantId: string;
  keyId: string;
  scopes: Scope[];
  /** Browser tokens may be narrowed to one session. */
  sessionId?: string;
  /** Viewer tokens may be narrowed to one room. */
  roomId?: string;
  /** Per-key concurrent session cap, when set. */
  maxSessions?: number | null;
}

export type EdgeVariables = AppVariables & { principal: Principal };

interface TokenClaims {
  typ: "parley-browser";
  sub: string; // key id
  ten: string; // tenant id
  scp: Scope[];
  sid?: string;
  rid?: string;
  iat: number;
  exp: number;
  [k: string]: unknown;
}

export class Authenticator {
  constructor(private readonly database: Database, private readonly jwtSecret: string) {}

  async mintToken(
    p: Principal,
    opts: { scopes: Scope[]; ttlSeconds: number; sessionId?: string; roomId?: string },
  ): Promise<{ token: string; expiresAt: string }> {
    const now = Math.floor(Date.now() / 1000);
    const claims: TokenClaims = {
      typ: "parley-browser",
      sub: p.keyId,
      ten: p.tenantId,
      scp: opts.scopes,
      iat: now,
      exp: now + opts.ttlSeconds,
    };
    if (opts.sessionId) claims.sid = opts.sessionId;
    if (opts.roomId) claims.rid = opts.roomId;
    return {
      token: await sign(claims, this.jwtSecret, "HS256"),
      expiresAt: new Date((now + opts.ttlSeconds) * 1000).toISOString(),
    };
  }

  async authenticate(header: string | undefined): Promise<Principal> {
    if (!header) throw new ApiError(401, "unauthorized", "missing Authorization: Bearer credential");
    const m = /^Bearer\s+(\S{1,4096})\s*$/i.exec(header);
    if (!m) throw new ApiError(401, "unauthorized", "Authorization must be 'Bearer <api key or token>'");
    const cred = m[1];
    if (cred.startsWith("pk_")) {
      const key = await findActiveKey(this.database, cred);
      if (!key) throw new ApiError(401, "unauthorized", "invalid or revoked API key");
      return {
        kind: "key",
        tenantId: key.tenantId,
        keyId: key.id,
        scopes: key.scopes,
        maxSessions: key.maxSessions,
      };
    }
    let claims: TokenClaims;
    try {
      claims = await verify(cred, this.jwtSecret, "HS256") as unknown as TokenClaims;
    } catch (e) {
      const expired = e instanceof Error && /expired/i.test(e.name + e.message);
      throw new ApiError(401, "unauthorized", expired ? "token expired" : "invalid token");
    }
    if (claims.typ !== "parley-browser" || typeof claims.sub !== "string" || !Array.isArray(claims.scp)) {
      throw new ApiError(401, "unauthorized", "invalid token");
    }
    const key = await findKeyById(this.database, claims.sub);
    if (!key || key.revokedAt || key.tenantId !== claims.ten) {
      throw new ApiError(401, "unauthorized", "token's API key was revoked");
    }
    // A token never carries more than its key has now, and a session-bound one never `tts` (tenant-wide jobs).
    const scopes = claims.scp.filter((s) => keyGrants(key.scopes, s) && !(claims.sid && s === "tts"));
    return {
      kind: "token",
      tenantId: claims.ten,
      keyId: key.id,
      scopes,
      sessionId: claims.sid,
      roomId: typeof claims.rid === "string" ? claims.rid : undefined,
    };
  }
}

/** What a key's scopes let it hand on: its own, everything for admin, and `rooms:view` with `sessions`. */
export function keyGrants(keyScopes: readonly Scope[], s: Scope): boolean {
  return keyScopes.includes(s) || keyScopes.includes("admin") ||
    (s === "rooms:view" && keyScopes.includes("sessions"));
}

export function hasScope(p: Principal, scope: Scope): boolean {
  return p.scopes.includes(scope) || (p.scopes.includes("admin") && p.kind === "key") ||
    (scope === "rooms:view" && p.scopes.includes("sessions"));
}

/** Authenticate and require a scope. Browser tokens never get admin. */
export function requireScope(
  auth: Authenticator,
  scope: Scope,
): MiddlewareHandler<{ Variables: EdgeVariables }> {
  return async (c, next) => {
    const p = await auth.authenticate(c.req.header("authorization"));
    if (!hasScope(p, scope) && !(p.kind === "token" && p.scopes.includes(scope))) {
      throw new ApiError(403, "forbidden", `this credential lacks the '${scope}' scope`);
    }
    c.set("principal", p);
    await next();
  };
}

/** A token narrowed to one room may only touch that room. */
export function assertRoomAllowed(p: Principal, roomId: string): void {
  if (p.roomId && p.roomId !== roomId) {
    throw new ApiError(403, "forbidden", "this token is limited to another room");
  }
}

/** A token narrowed to one session may only touch that session. */
export function assertSessionAllowed(p: Principal, sessionId: string): void {
  if (p.sessionId && p.sessionId !== sessionId) {
    throw new ApiError(403, "forbidden", "this token is limited to another session");
  }
}
