/**
 * Admin routes (scope `admin`, API keys only), always within the caller's tenant: manage keys, see nodes.
 */
import { z } from "zod";
import { createApiKey, listApiKeys, revokeApiKey } from "../../db/api_keys.ts";
import { listNodes } from "../../db/nodes.ts";
import { ApiError } from "../../lib/errors.ts";
import { readJson, validationError } from "../../lib/http.ts";
import { SCOPES } from "../../protocol/api.ts";
import { PgText } from "../../protocol/pg_domains.ts";
import type { EdgeApp, EdgeContext } from "../context.ts";
import { guard } from "../context.ts";

export const CreateKey = z.object({
  name: PgText.min(1).max(100),
  scopes: z.array(z.enum(SCOPES)).min(1).max(SCOPES.length),
  max_sessions: z.number().int().min(1).max(100000).optional(),
}).strict();

export function adminRoutes(app: EdgeApp, ctx: EdgeContext): void {
  const admin = guard(ctx, "admin");
  app.get("/v1/keys", admin, async (c) => {
    const keys = await listApiKeys(ctx.database, c.get("principal").tenantId);
    return c.json({
      keys: keys.map((k) => ({
        id: k.id,
        name: k.name,
        prefix: k.prefix,
        scopes: k.scopes,
        max_sessions: k.maxSessions,
        created_at: k.createdAt,
        revoked_at: k.revokedAt,
      })),
    });
  });
  app.post("/v1/keys", admin, async (c) => {
    const parsed = CreateKey.safeParse(await readJson(c, 16 * 1024));
    if (!parsed.success) throw validationError(parsed.error.issues);
    const k = await createApiKey(ctx.database, {
      tenantId: c.get("principal").tenantId,
      name: parsed.data.name,
      scopes: parsed.data.scopes,
      maxSessions: parsed.data.max_sessions,
    });
    return c.json({ id: k.id, name: k.name, scopes: k.scopes, prefix: k.prefix, key: k.key }, 201);
  });
  app.delete("/v1/keys/:id", admin, async (c) => {
    const id = c.req.param("id") ?? "";
    if (!z.uuid().safeParse(id).success) throw new ApiError(404, "not_found", "no such key");
    const ok = await revokeApiKey(ctx.database, id, c.get("principal").tenantId);
    if (!ok) throw new ApiError(404, "not_found", "no such key (or already revoked)");
    return c.body(null, 204);
  });
  app.get("/v1/nodes", admin, async (c) => {
    return c.json({ nodes: await listNodes(ctx.database, ctx.config.NODE_TIMEOUT_MS) });
  });
}
