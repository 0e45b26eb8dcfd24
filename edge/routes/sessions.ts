/**
 * Session signaling (WHIP-style, RFC 9725 where it fits):
 *   POST   /v1/sessions        application/sdp offer → 201 application/sdp answer + Location
 *                              application/json {sdp, options, resume?} → 201 {id, sdp, node_id, location}
 *   GET    /v1/sessions/:id    state, node, timestamps, reason
 *   DELETE /v1/sessions/:id    end it (idempotent: 204 also when already closed); `?erase=true` also deletes
 *                              its transcript and event log (right to erasure; ends it first if needed)
 *   PATCH  /v1/sessions/:id    405: Parley is non-trickle (the answer carries all host candidates) and does not
 *                              do ICE restarts; a client that lost its path resumes with a new POST instead.
 * The session row (tenant → node) lives in Postgres, so any edge process can route later requests.
 */
import { z } from "zod";
import { liveNodeUrl, nodeStatus, pickNodes } from "../../db/nodes.ts";
import {
  closeSessionsOfLostNodes,
  countLiveSessions,
  createSessionRow,
  deleteSessionRow,
  markClosed as markClosedRow,
  routeSession,
  type SessionRow,
  sessionRowOfTenant,
} from "../../db/sessions.ts";
import { eraseSessionData } from "../../db/history.ts";
import { ApiError } from "../../lib/errors.ts";
import { readBodyLimited, readJson, validationError } from "../../lib/http.ts";
import { registry } from "../../lib/metrics.ts";
import { checkOffer, MAX_SDP_BYTES } from "../../protocol/sdp.ts";
import { parseSsml, SsmlError } from "../../protocol/ssml.ts";
import { ForbiddenKeyError, parseClientJson } from "../../protocol/json.ts";
import { type CloseReason, SayRequest, SessionOptions } from "../../protocol/session_messages.ts";
import {
  type CreateSessionRequest,
  type CreateSessionResponse,
  INTERNAL_SESSIONS_PATH,
} from "../../protocol/internal_api.ts";
import type { EdgeApp, EdgeContext } from "../context.ts";
import { guard } from "../context.ts";
import { assertSessionAllowed, type Principal } from "../auth.ts";
import { OriginUnreachableError } from "../origin_client.ts";
import { nodeLivenessKnown } from "../database_watch.ts";
import { loadRoom, placeRoom } from "./rooms.ts";

const setupSeconds = registry.histogram(
  "parley_edge_session_setup_seconds",
  "POST /v1/sessions: offer received → answer returned",
);
const sessionsCreated = registry.counter("parley_edge_sessions_created_total", "Sessions created by outcome");

export const JsonOffer = z.object({
  sdp: z.string().min(1),
  options: z.record(z.string(), z.unknown()).optional(),
  resume: z.object({ session_id: z.uuid(), last_seq: z.number().int().min(0) }).strict().optional(),
}).strict();

const SESSION_ID = z.uuid();

/** Options from the query string (SDP variant): ?mode=echo&language=en&voice=…&barge_in=false */
function optionsFromQuery(q: Record<string, string>): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(q)) {
    if (k === "resume" || k === "last_seq") continue;
    if (v === "true" || v === "false") o[k] = v === "true";
    else if (/^\d+(\.\d+)?$/.test(v)) o[k] = Number(v);
    else o[k] = v;
  }
  return o;
}

export async function loadSession(ctx: EdgeContext, p: Principal, id: string) {
  if (!SESSION_ID.safeParse(id).success) throw new ApiError(404, "not_found", "no such session");
  assertSessionAllowed(p, id);
  const row = await sessionRowOfTenant(ctx.database, p.tenantId, id);
  // Another tenant's session is indistinguishable from a missing one.
  if (!row) throw new ApiError(404, "not_found", "no such session");
  return row;
}

function summary(row: SessionRow) {
  return {
    id: row.id,
    state: row.state,
    reason: row.reason,
    mode: row.mode,
    kind: row.kind,
    options: row.options,
    node_id: row.nodeId,
    last_seq: row.lastSeq,
    created_at: row.createdAt,
    active_at: row.activeAt,
    closed_at: row.closedAt,
  };
}

export function nodeUrl(ctx: EdgeContext, nodeId: string | null): Promise<string | null> {
  return nodeId ? liveNodeUrl(ctx.database, nodeId, ctx.config.NODE_TIMEOUT_MS) : Promise.resolve(null);
}

/**
 * End a live session on its origin. The session is marked `origin_lost` here only when its origin is known to be
 * gone: it deregistered, or it cannot be reached AND its heartbeat is stale while this edge has been connected to
 * the database long enough to trust heartbeats (database_watch.ts). An origin whose heartbeat merely looks stale
 * (the database was down) is still asked; when it cannot be reached and its death is not certain, the DELETE is
 * answered 503 + Retry-After and nothing is marked: a 204 promises that the session has ended.
 */
async function endSession(
  ctx: EdgeContext,
  row: SessionRow,
  requestId: string,
): Promise<void> {
  const node = row.nodeId
    ? await nodeStatus(ctx.database, row.nodeId, ctx.config.NODE_TIMEOUT_MS)
    : undefined;
  if (!node || node.stopped) {
    await markClosed(ctx, row.id, "origin_lost");
    return;
  }
  try {
    const res = await ctx.origins.call(
      node.url,
      "DELETE",
      `${INTERNAL_SESSIONS_PATH}/${row.id}?reason=client_hangup`,
      {
        requestId,
        ...(node.alive ? {} : { timeoutMs: 5_000 }),
      },
    );
    if (res.status === 404) await markClosed(ctx, row.id, "origin_lost");
    else if (res.status >= 300) throw new ApiError(502, "origin_error", `origin answered ${res.status}`);
  } catch (e) {
    if (!(e instanceof OriginUnreachableError)) throw e;
    if (node.alive || !nodeLivenessKnown(ctx)) {
      throw new ApiError(503, "unavailable", "the session's origin cannot be reached now; retry", {
        "Retry-After": "2",
      });
    }
    await markClosed(ctx, row.id, "origin_lost");
  }
}

/** Mark closed from the edge side (origin gone); never overwrites an earlier reason. */
export async function markClosed(ctx: EdgeContext, id: string, reason: CloseReason): Promise<void> {
  await markClosedRow(ctx.database, id, reason);
}

export function sessionRoutes(app: EdgeApp, ctx: EdgeContext): void {
  const auth = guard(ctx, "sessions");

  app.post("/v1/sessions", auth, async (c) => {
    const t0 = performance.now();
    const p = c.get("principal");
    const type = (c.req.header("content-type") ?? "").toLowerCase();
    const raw = await readBodyLimited(c, MAX_SDP_BYTES + 16 * 1024);
    let sdp: string;
    let rawOptions: Record<string, unknown>;
    let resume: { session_id: string; last_seq: number } | undefined;
    const wantsJson = type.startsWith("application/json");
    if (type.startsWith("application/sdp")) {
      sdp = new TextDecoder().decode(raw);
      rawOptions = optionsFromQuery(c.req.query());
      const q = c.req.query();
      if (q.resume) {
        const last = Number(q.last_seq ?? "0");
        if (!SESSION_ID.safeParse(q.resume).success || !Number.isInteger(last) || last < 0) {
          throw new ApiError(
            400,
            "validation_failed",
            "resume needs a session id and a non-negative last_seq",
          );
        }
        resume = { session_id: q.resume, last_seq: last };
      }
    } else if (wantsJson) {
      let json: unknown;
      try {
        json = parseClientJson(new TextDecoder().decode(raw));
      } catch (e) {
        if (e instanceof ForbiddenKeyError) throw new ApiError(400, "validation_failed", e.message);
        throw new ApiError(400, "invalid_json", "body is not valid JSON");
      }
      const parsed = JsonOffer.safeParse(json);
      if (!parsed.success) throw validationError(parsed.error.issues);
      sdp = parsed.data.sdp;
      rawOptions = parsed.data.options ?? {};
      resume = parsed.data.resume;
    } else {
      throw new ApiError(
        415,
        "unsupported_media_type",
        "send the offer as application/sdp or application/json",
      );
    }
    const check = checkOffer(sdp);
    if (!check.ok) throw new ApiError(400, "bad_request", `invalid SDP offer: ${check.message}`);
    const opts = SessionOptions.safeParse(rawOptions);
    if (!opts.success) throw validationError(opts.error.issues);
    const options = opts.data;

    let sessionId: string;
    let candidates: Array<{ id: string; url: string }>;
    if (resume) {
      const row = await loadSession(ctx, p, resume.session_id);
      if (row.state === "closed") {
        throw new ApiError(409, "conflict", `session already closed (${row.reason})`);
      }
      const node = row.nodeId
        ? await nodeStatus(ctx.database, row.nodeId, ctx.config.NODE_TIMEOUT_MS)
        : undefined;
      if (!node || node.stopped || (!node.alive && nodeLivenessKnown(ctx))) {
        throw new ApiError(409, "conflict", "the session's origin is gone; start a new session");
      }
      // A stale heartbeat right after a database outage proves nothing yet: try the origin.
      sessionId = row.id;
      candidates = [{ id: row.nodeId!, url: node.url }];
    } else {
      if (p.sessionId) throw new ApiError(403, "forbidden", "this token is limited to an existing session");
      const n = await countLiveSessions(ctx.database, { tenantId: p.tenantId });
      if (Number(n) >= ctx.config.MAX_SESSIONS_PER_TENANT) {
        throw new ApiError(
          429,
          "limit_exceeded",
          `tenant has ${n} live sessions (limit ${ctx.config.MAX_SESSIONS_PER_TENANT})`,
        );
      }
      if (p.maxSessions) {
        const k = await countLiveSessions(ctx.database, { apiKeyId: p.keyId });
        if (Number(k) >= p.maxSessions) {
          throw new ApiError(
            429,
            "limit_exceeded",
            `API key has ${k} live sessions (limit ${p.maxSessions})`,
          );
        }
      }
      if (options.room) {
        // A publisher goes where its room lives (placing the room if it has no live origin yet).
        const room = await loadRoom(ctx, p, options.room);
        candidates = [await placeRoom(ctx, room)];
      } else {
        candidates = (await pickNodes(ctx.database, ctx.config.NODE_TIMEOUT_MS)).map((n) => ({
          id: n.id,
          url: n.url,
        }));
      }
      if (candidates.length === 0) {
        sessionsCreated.inc({ outcome: "no_origin" });
        throw new ApiError(503, "no_origin_available", "no origin node can take a session now", {
          "Retry-After": "2",
        });
      }
      sessionId = await createSessionRow(ctx.database, {
        tenantId: p.tenantId,
        apiKeyId: p.keyId,
        mode: options.mode,
        options,
        nodeId: candidates[0].id,
      });
    }

    const req: CreateSessionRequest = {
      session_id: sessionId,
      tenant_id: p.tenantId,
      sdp,
      options,
      ...(resume ? { resume_after_seq: resume.last_seq } : {}),
    };
    const body = JSON.stringify(req);
    let lastProblem = "no origin accepted the session";
    const tried: string[] = [];
    let queue = candidates.slice(0, 3);
    let refreshed = false;
    while (tried.length < 3) {
      const node = queue.shift();
      if (!node) {
        // Everyone on the list refused or was unreachable. The list may predate a node that registered since
        // (a recycling origin's successor takes over exactly like that): read it once more.
        if (resume || refreshed || options.room) break;
        refreshed = true;
        queue = (await pickNodes(ctx.database, ctx.config.NODE_TIMEOUT_MS, tried))
          .slice(0, 3 - tried.length)
          .map((n) => ({ id: n.id, url: n.url }));
        if (queue.length === 0) break;
        continue;
      }
      tried.push(node.id);
      if (!resume) {
        await routeSession(ctx.database, sessionId, node.id);
      }
      let res;
      try {
        res = await ctx.origins.call(node.url, "POST", INTERNAL_SESSIONS_PATH, {
          body,
          contentType: "application/json",
          requestId: c.get("requestId"),
          timeoutMs: ctx.config.SESSION_CONNECT_TIMEOUT_MS,
        });
      } catch (e) {
        if (e instanceof OriginUnreachableError) {
          // The origin never accepted this session: safe to try another one.
          lastProblem = e.message;
          c.get("log").warn("origin unreachable, trying next", { node_id: node.id, session_id: sessionId });
          continue;
        }
        throw e;
      }
      if (res.status === 503 && !resume) {
        lastProblem = `origin ${node.id} is draining or full`;
        continue;
      }
      if (res.status !== 201) {
        if (!resume) await deleteSessionRow(ctx.database, sessionId);
        sessionsCreated.inc({ outcome: "rejected" });
        let err = { code: "origin_error", message: `origin answered ${res.status}` };
        try {
          err = res.json<{ error: typeof err }>().error ?? err;
        } catch { /* keep generic */ }
        const status = res.status >= 400 && res.status < 500 ? res.status : 502;
        throw new ApiError(status, err.code as "origin_error", err.message);
      }
      const answer = res.json<CreateSessionResponse>();
      setupSeconds.observe((performance.now() - t0) / 1000);
      sessionsCreated.inc({ outcome: resume ? "resumed" : "created" });
      const location = `/v1/sessions/${sessionId}`;
      c.header("Location", location);
      if (wantsJson) {
        return c.json({ id: sessionId, sdp: answer.sdp, node_id: answer.node_id, location }, 201);
      }
      c.header("Content-Type", "application/sdp");
      return c.body(answer.sdp, 201);
    }
    // Nobody accepted: leave no partial row behind.
    if (!resume) await deleteSessionRow(ctx.database, sessionId);
    sessionsCreated.inc({ outcome: "no_origin" });
    throw new ApiError(503, "no_origin_available", lastProblem, { "Retry-After": "2" });
  });

  app.get("/v1/sessions/:id", auth, async (c) => {
    const row = await loadSession(ctx, c.get("principal"), c.req.param("id") ?? "");
    return c.json(summary(row));
  });

  app.delete("/v1/sessions/:id", auth, async (c) => {
    const row = await loadSession(ctx, c.get("principal"), c.req.param("id") ?? "");
    // Erasure is explicit (`?erase=true`): a plain DELETE only ends the session, so a WHIP client that retries
    // its DELETE, or sends `bye` and then DELETE, can never destroy the transcript by accident.
    const erase = c.req.query("erase");
    if (erase !== undefined && erase !== "true" && erase !== "false") {
      throw new ApiError(400, "validation_failed", "erase must be true or false");
    }
    if (row.state !== "closed") await endSession(ctx, row, c.get("requestId"));
    if (erase === "true") {
      // Right to erasure: the transcript and event log go; the session row stays as metadata.
      await eraseSessionData(ctx.database, row.id);
    }
    return c.body(null, 204);
  });

  app.post("/v1/sessions/:id/say", auth, async (c) => {
    const row = await loadSession(ctx, c.get("principal"), c.req.param("id") ?? "");
    const parsed = SayRequest.safeParse(await readJson(c, 16 * 1024));
    if (!parsed.success) throw validationError(parsed.error.issues);
    if (parsed.data.ssml) {
      try {
        parseSsml(parsed.data.text); // refused here with its position; the origin parses it again to speak it
      } catch (e) {
        if (e instanceof SsmlError) throw new ApiError(400, "invalid_ssml", e.message);
        throw e;
      }
    }
    if (row.state === "closing" || row.state === "closed") {
      throw new ApiError(409, "conflict", `session is ${row.state}`);
    }
    const url = row.nodeId ? await liveNodeUrl(ctx.database, row.nodeId, ctx.config.NODE_TIMEOUT_MS) : null;
    if (!url) throw new ApiError(409, "conflict", "the session's origin is gone");
    let res;
    try {
      res = await ctx.origins.call(url, "POST", `${INTERNAL_SESSIONS_PATH}/${row.id}/say`, {
        body: JSON.stringify(parsed.data),
        contentType: "application/json",
        requestId: c.get("requestId"),
      });
    } catch (e) {
      if (e instanceof OriginUnreachableError) throw new ApiError(502, "origin_error", "origin unreachable");
      throw e;
    }
    if (res.status === 404 || res.status === 409) throw new ApiError(409, "conflict", "session is not live");
    if (res.status >= 300) throw new ApiError(502, "origin_error", `origin answered ${res.status}`);
    return c.json({ id: row.id, accepted: true }, 202);
  });

  app.patch("/v1/sessions/:id", auth, (c) => {
    c.header("Allow", "GET, DELETE");
    throw new ApiError(
      405,
      "method_not_allowed",
      "trickle ICE and ICE restart are not supported: the answer carries all candidates; to recover, POST a new offer with resume",
      { Allow: "GET, DELETE" },
    );
  });
}

/**
 * Sweeper: sessions whose origin stopped heartbeating are closed with `origin_lost`. Runs on every edge;
 * the update is idempotent, so several edges sweeping is harmless.
 */
export async function sweepLostSessions(ctx: EdgeContext): Promise<number> {
  return (await closeSessionsOfLostNodes(ctx.database, ctx.config.NODE_TIMEOUT_MS)).length;
}
