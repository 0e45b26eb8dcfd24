/**
 * Phone-call administration (scope `admin`, within the caller's tenant): SIP digest credentials (stored as
 * HA1 hashes under SIP_REALM, never the password) and numbers (what a call to an extension runs). The origin's
 * SIP agent reads both from Postgres on each call.
 */
import { z } from "zod";
import {
  createSipCredential,
  createSipNumber,
  deleteSipCredential,
  deleteSipNumber,
  listSipCredentials,
  listSipNumbers,
  SipConflictError,
  type SipCredentialRow,
  type SipNumberRow,
} from "../../db/sip.ts";
import { ApiError } from "../../lib/errors.ts";
import { readJson, validationError } from "../../lib/http.ts";
import {
  CreateSipCredential,
  CreateSipNumber,
  type SipCredential,
  type SipNumber,
} from "../../protocol/sip.ts";
import type { SessionOptions } from "../../protocol/session_messages.ts";
import type { EdgeApp, EdgeContext } from "../context.ts";
import { guard } from "../context.ts";
import { loadRoom } from "./rooms.ts";

function credentialOut(r: SipCredentialRow): SipCredential {
  return { id: r.id, username: r.username, realm: r.realm, created_at: r.createdAt };
}

function numberOut(r: SipNumberRow): SipNumber {
  return {
    id: r.id,
    number: r.number,
    options: r.options as SessionOptions,
    greeting: r.greeting,
    room: (r.options as SessionOptions).room ?? null,
    created_at: r.createdAt,
  };
}

function conflict(err: unknown): never {
  if (err instanceof SipConflictError) throw new ApiError(409, "conflict", err.message);
  throw err;
}

export function sipRoutes(app: EdgeApp, ctx: EdgeContext): void {
  const admin = guard(ctx, "admin");

  app.post("/v1/sip/credentials", admin, async (c) => {
    const parsed = CreateSipCredential.safeParse(await readJson(c, 16 * 1024));
    if (!parsed.success) throw validationError(parsed.error.issues);
    const row = await createSipCredential(ctx.database, {
      tenantId: c.get("principal").tenantId,
      username: parsed.data.username,
      realm: ctx.config.SIP_REALM,
      password: parsed.data.password,
    }).catch(conflict);
    return c.json(credentialOut(row), 201);
  });
  app.get("/v1/sip/credentials", admin, async (c) => {
    const rows = await listSipCredentials(ctx.database, c.get("principal").tenantId);
    return c.json({ credentials: rows.map(credentialOut) });
  });
  app.delete("/v1/sip/credentials/:id", admin, async (c) => {
    const id = c.req.param("id") ?? "";
    if (!z.uuid().safeParse(id).success) throw new ApiError(404, "not_found", "no such credential");
    if (!await deleteSipCredential(ctx.database, c.get("principal").tenantId, id)) {
      throw new ApiError(404, "not_found", "no such credential");
    }
    return c.body(null, 204);
  });

  app.post("/v1/numbers", admin, async (c) => {
    const parsed = CreateSipNumber.safeParse(await readJson(c, 16 * 1024));
    if (!parsed.success) throw validationError(parsed.error.issues);
    const { room: shorthand, options } = parsed.data;
    if (shorthand && options.room && shorthand !== options.room) {
      throw new ApiError(400, "bad_request", "room and options.room name different rooms");
    }
    const room = shorthand ?? options.room;
    // Calls publish into it like a WebRTC session with options.room: it must be a room of this tenant.
    if (room) await loadRoom(ctx, c.get("principal"), room);
    const row = await createSipNumber(ctx.database, {
      tenantId: c.get("principal").tenantId,
      number: parsed.data.number,
      options: room ? { ...options, room } : options,
      greeting: parsed.data.greeting,
      room,
    }).catch(conflict);
    return c.json(numberOut(row), 201);
  });
  app.get("/v1/numbers", admin, async (c) => {
    const rows = await listSipNumbers(ctx.database, c.get("principal").tenantId);
    return c.json({ numbers: rows.map(numberOut) });
  });
  app.delete("/v1/numbers/:id", admin, async (c) => {
    const id = c.req.param("id") ?? "";
    if (!z.uuid().safeParse(id).success) throw new ApiError(404, "not_found", "no such number");
    if (!await deleteSipNumber(ctx.database, c.get("principal").tenantId, id)) {
      throw new ApiError(404, "not_found", "no such number");
    }
    return c.body(null, 204);
  });
}
