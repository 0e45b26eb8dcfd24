/** Everything an edge route group needs, built once per edge process by edge/server.ts. */
import type { Hono, MiddlewareHandler } from "hono";
import type { Database } from "../db/client.ts";
import type { Config } from "../lib/config.ts";
import type { Logger } from "../lib/log.ts";
import type { Scope } from "../protocol/api.ts";
import { type Authenticator, type EdgeVariables, requireScope } from "./auth.ts";
import { rateLimit, type RateLimiter } from "./rate_limit.ts";
import type { OriginClient } from "./origin_client.ts";
import type { DatabaseWatch } from "./database_watch.ts";

export interface EdgeContext {
  config: Config;
  database: Database;
  auth: Authenticator;
  limiter: RateLimiter;
  origins: OriginClient;
  log: Logger;
  /**
   * Checks /readyz adds to the database's, by name (EdgeServer.addReadyCheck): an all-in-one process is not
   * ready until its own origin serves sessions.
   */
  readyChecks: Map<string, () => boolean>;
  /** This edge's uninterrupted database connectivity: node liveness is judged only after enough of it. */
  dbWatch: DatabaseWatch;
}

export type EdgeApp = Hono<{ Variables: EdgeVariables }>;

/** Authenticate, require `scope`, then apply the per-key rate limit. */
export function guard(ctx: EdgeContext, scope: Scope): MiddlewareHandler<{ Variables: EdgeVariables }> {
  const auth = requireScope(ctx.auth, scope);
  const limit = rateLimit(ctx.limiter);
  return (c, next) =>
    auth(c, async () => {
      await limit(c, next);
    });
}
