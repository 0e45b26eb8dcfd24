/** POST /v1/tokens: an API key mints a short-lived browser token narrowed to scopes and optionally one session. */
import { z } from "zod";
import { ApiError } from "../../lib/errors.ts";
import { readJson, validationError } from "../../lib/http.ts";
import { SCOPES } from "../../protocol/api.ts";
import type { EdgeApp, EdgeContext } from "../context.ts";
import { keyGrants, requireScope } from "../auth.ts";
import { rateLimit } from "../rate_limit.ts";
import { roomOfTenant } from "../../db/rooms.ts";

export const TokenRequest = z.object({
  scopes: z.array(z.enum(SCOPES)).min(1).max(SCOPES.length).optional(),
  ttl_s: z.number().int().min(30).max(3600).optional(),
  session_id: z.uuid().optional(),
  /** A viewer token for one room (scope `rooms:view`), shareable as `/rooms/{id}#token=…`. */
  room_id: z.uuid().optional(),
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
      const missing = requested.filter((s) => !keyGrants(p.scopes, s));
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
      if (requested.includes("rooms:view") && !req.room_id && requested.length === 1) {
        throw new ApiError(400, "validation_failed", "a rooms:view token names its room (room_id)");
      }
      if (req.room_id && !(await roomOfTenant(ctx.database, p.tenantId, req.room_id))) {
        throw new ApiError(404, "not_found", "no such room");
      }
      const ttl = Math.min(req.ttl_s ?? 900, ctx.config.TOKEN_MAX_TTL_S);
      const t = await ctx.auth.mintToken(p, {
        scopes: requested,
        ttlSeconds: ttl,
        sessionId: req.session_id,
        roomId: req.room_id,
      });
      return c.json({
        token: t.token,
        expires_at: t.expiresAt,
        scopes: requested,
        session_id: req.session_id ?? null,
        room_id: req.room_id ?? null,
        ...(req.room_id ? { link: `/rooms/${req.room_id}#token=${t.token}` } : {}),
      }, 201);
    },
  );
  void requireScope;
}
