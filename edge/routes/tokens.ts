/** POST /v1/tokens: an API key mints a short-lived browser token narrowed to scopes and optionally one session. */
import { z } from "zod";
import { ApiError } from "../../lib/errors.ts";
import { readJson, validationError } from "../../lib/http.ts";
import { SCOPES } from "../../protocol/api.ts";
import type { EdgeApp, EdgeContext } from "../context.ts";
import { requireScope } from "../auth.ts";
import { rateLimit } from "../rate_limit.ts";

export const TokenRequest = z.object({
  scopes: z.array(z.enum(SCOPES)).min(1).max(SCOPES.length).optional(),
  ttl_s: z.number().int().min(30).max(3600).optional(),
  session_id: z.uuid().optional(),
}).strict();

export function tokenRoutes(app: EdgeApp, ctx: EdgeContext): void {
  app.post(
    "/v1/tokens",
    async (c, next) => {
      // Any valid API key may mint; scope narrowing below. Tokens cannot mint tokens.
      const p = await ctx.auth.authenticate(c.req.header("authorization"));
      if (p.kind !== "key") throw new ApiError(403, "forbidden", "only API keys can mint browser tokens");
      c.set("principal", p);
      await next();
    },
    rateLimit(ctx.limiter),
    async (c) => {
      const p = c.get("principal");
      const parsed = TokenRequest.safeParse(await readJson(c, 16 * 1024));
      if (!parsed.success) throw validationError(parsed.error.issues);
      const req = parsed.data;
      const requested = req.scopes ??
        p.scopes.filter((s) => s !== "admin" && !(req.session_id && s === "tts"));
      if (requested.includes("admin")) {
        throw new ApiError(
          403,
          "forbidden",
          "browser tokens cannot carry 'admin'",
        );
      }
      const missing = requested.filter((s) => !p.scopes.includes(s) && !p.scopes.includes("admin"));
      if (missing.length) throw new ApiError(403, "forbidden", `key lacks scopes: ${missing.join(", ")}`);
      if (requested.length === 0) throw new ApiError(400, "validation_failed", "no scopes to grant");
      if (req.session_id && requested.includes("tts")) {
        // TTS jobs belong to the tenant, not to a session: a token bound to one session must not see them all.
        throw new ApiError(
          400,
          "validation_failed",
          "a token bound to a session cannot carry 'tts'; mint a separate token without session_id for TTS",
        );
      }
      const ttl = Math.min(req.ttl_s ?? 900, ctx.config.TOKEN_MAX_TTL_S);
      const t = await ctx.auth.mintToken(p, {
        scopes: requested,
        ttlSeconds: ttl,
        sessionId: req.session_id,
      });
      return c.json({
        token: t.token,
        expires_at: t.expiresAt,
        scopes: requested,
        session_id: req.session_id ?? null,
      }, 201);
    },
  );
  void requireScope;
}
