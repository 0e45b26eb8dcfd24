/**
 * Session rows and their event log: the durable side of a live WebRTC session (origin/session).
 *
 * State machine of `sessions.state`: connecting → active → closing → closed. Every transition is a guarded
 * UPDATE (it only moves forward), so a late or duplicate transition is a no-op and the FIRST close reason wins.
 *
 * Events: `appendEvent` assigns the next seq inside one transaction (UPDATE sessions SET last_seq = last_seq + 1
 * ... RETURNING takes the row lock, so concurrent appends for one session serialize and seq is gap-free), inserts
 * the session_events row and, for a confirmed transcript, the transcript_segments row in the same transaction.
 * Only after it commits does the session send the event, so everything a client ever saw can be replayed
 * (`eventsAfter`) on resume.
 */
import { and, asc, eq, gt, sql } from "drizzle-orm";
import type { Database } from "./client.ts";
import { sessionEvents, sessions, transcriptSegments } from "./schema.ts";
import type {
  CloseReason,
  ServerEvent,
  ServerEventBody,
  SessionKind,
  SessionOptions,
  SessionState,
} from "../protocol/session_messages.ts";

export type SessionRow = typeof sessions.$inferSelect;

export class SessionStoreError extends Error {
  constructor(readonly code: "not_found" | "conflict" | "closed", message: string) {
    super(message);
    this.name = "SessionStoreError";
  }
}

export interface ClaimSessionInput {
  id: string;
  tenantId: string;
  nodeId: string;
  mode: string;
  options: SessionOptions | Record<string, unknown>;
  apiKeyId?: string | null;
  /** Transport (default webrtc). */
  kind?: SessionKind;
}

/**
 * Take ownership of a new session row for this node. The edge normally inserted it already (state `connecting`,
 * routing state lives in Postgres); a standalone origin (tests, bench) inserts it here. A row that exists but is
 * no longer `connecting`, or belongs to another tenant, is a conflict.
 */
export async function claimSession(database: Database, input: ClaimSessionInput): Promise<SessionRow> {
  // One statement (one commit on the setup path): insert, or adopt the edge's `connecting` row of this tenant.
  const rows = await database.db.insert(sessions).values({
    id: input.id,
    tenantId: input.tenantId,
    apiKeyId: input.apiKeyId ?? null,
    nodeId: input.nodeId,
    mode: input.mode,
    kind: input.kind ?? "webrtc",
    options: input.options,
  }).onConflictDoUpdate({
    target: sessions.id,
    set: { nodeId: input.nodeId, updatedAt: sql`now()` },
    setWhere: and(eq(sessions.tenantId, input.tenantId), eq(sessions.state, "connecting")),
  }).returning();
  if (rows.length === 0) {
    const existing = await getSessionRow(database, input.id);
    if (!existing || existing.tenantId !== input.tenantId) {
      throw new SessionStoreError("conflict", "session id belongs to another tenant");
    }
    throw new SessionStoreError("conflict", `session is already ${existing.state}`);
  }
  return rows[0];
}

/**
 * Resume: a new peer attaches to an existing, not yet closed session row (same tenant). The row moves to this
 * node; its state and last_seq are kept (the new peer continues the seq numbering).
 */
export async function attachSession(
  database: Database,
  input: { id: string; tenantId: string; nodeId: string },
): Promise<SessionRow> {
  const rows = await database.db.update(sessions)
    .set({ nodeId: input.nodeId, updatedAt: sql`now()` })
    .where(and(
      eq(sessions.id, input.id),
      eq(sessions.tenantId, input.tenantId),
      sql`${sessions.state} in ('connecting', 'active')`,
    ))
    .returning();
  if (rows.length > 0) return rows[0];
  const existing = await getSessionRow(database, input.id);
  if (!existing || existing.tenantId !== input.tenantId) {
    throw new SessionStoreError("not_found", "no such session to resume");
  }
  throw new SessionStoreError("closed", `session is ${existing.state} (${existing.reason ?? "no reason"})`);
}

export async function getSessionRow(database: Database, id: string): Promise<SessionRow | undefined> {
  const rows = await database.db.select().from(sessions).where(eq(sessions.id, id));
  return rows[0];
}

/** connecting → active (sets active_at once). Returns false when the row was not connecting/active. */
export async function markActive(database: Database, id: string): Promise<boolean> {
  const rows = await database.db.update(sessions)
    .set({ state: "active", activeAt: sql`coalesce(${sessions.activeAt}, now())`, updatedAt: sql`now()` })
    .where(and(eq(sessions.id, id), sql`${sessions.state} in ('connecting', 'active')`))
    .returning({ id: sessions.id });
  return rows.length > 0;
}

/** → closing with the reason (first reason wins). */
export async function markClosing(database: Database, id: string, reason: CloseReason): Promise<boolean> {
  const rows = await database.db.update(sessions)
    .set({ state: "closing", reason: sql`coalesce(${sessions.reason}, ${reason})`, updatedAt: sql`now()` })
    .where(and(eq(sessions.id, id), sql`${sessions.state} in ('connecting', 'active')`))
    .returning({ id: sessions.id });
  return rows.length > 0;
}

/** → closed with closed_at (first reason wins). Idempotent: false when it was already closed. */
export async function markClosed(database: Database, id: string, reason: CloseReason): Promise<boolean> {
  const rows = await database.db.update(sessions)
    .set({
      state: "closed",
      reason: sql`coalesce(${sessions.reason}, ${reason})`,
      closedAt: sql`now()`,
      updatedAt: sql`now()`,
    })
    .where(and(eq(sessions.id, id), sql`${sessions.state} <> 'closed'`))
    .returning({ id: sessions.id });
  return rows.length > 0;
}

/**
 * Persist one event: assign seq = last_seq + 1 under the row lock, insert it (and a confirmed transcript's
 * segment) in the same transaction. Returns the seq. Throws SessionStoreError("closed") when the session row is
 * closed (a closed session never emits again) and "not_found" when there is no row.
 */
export async function appendEvent(
  database: Database,
  sessionId: string,
  body: ServerEventBody,
): Promise<number> {
  return await database.db.transaction(async (tx) => {
    const bumped = await tx.update(sessions)
      .set({ lastSeq: sql`${sessions.lastSeq} + 1`, updatedAt: sql`now()` })
      .where(and(eq(sessions.id, sessionId), sql`${sessions.state} <> 'closed'`))
      .returning({ seq: sessions.lastSeq, tenantId: sessions.tenantId });
    if (bumped.length === 0) {
      const exists = await tx.select({ state: sessions.state }).from(sessions).where(
        eq(sessions.id, sessionId),
      );
      throw new SessionStoreError(
        exists.length ? "closed" : "not_found",
        `cannot append to session ${sessionId}`,
      );
    }
    const seq = Number(bumped[0].seq);
    const event = { ...body, seq } as ServerEvent;
    await tx.insert(sessionEvents).values({ sessionId, seq, type: body.type, payload: event });
    if (event.type === "transcript" && event.status === "confirmed") {
      await tx.insert(transcriptSegments).values({
        sessionId,
        tenantId: bumped[0].tenantId,
        segmentId: event.segment_id,
        seq,
        text: event.alternatives[0]?.text ?? event.stable_text + event.unstable_text,
        alternatives: event.alternatives,
        startMs: Math.round(event.start_ms),
        endMs: Math.round(event.end_ms),
        latencyMs: Math.round(event.latency_ms),
        words: event.words ?? null,
        confidence: event.confidence ?? null,
      });
    }
    return seq;
  });
}

/** Persisted events with seq > afterSeq, in seq order (resume replay). */
export async function eventsAfter(
  database: Database,
  sessionId: string,
  afterSeq: number,
  limit = 100_000,
): Promise<ServerEvent[]> {
  const rows = await database.db.select({ seq: sessionEvents.seq, payload: sessionEvents.payload })
    .from(sessionEvents)
    .where(and(eq(sessionEvents.sessionId, sessionId), gt(sessionEvents.seq, afterSeq)))
    .orderBy(asc(sessionEvents.seq))
    .limit(limit);
  return rows.map((r) => ({ ...(r.payload as ServerEvent), seq: Number(r.seq) }));
}

export interface SessionStatus {
  id: string;
  state: SessionState;
  reason: CloseReason | null;
  lastSeq: number;
}

export async function sessionStatus(database: Database, id: string): Promise<SessionStatus | undefined> {
  const row = await getSessionRow(database, id);
  if (!row) return undefined;
  return {
    id: row.id,
    state: row.state as SessionState,
    reason: (row.reason as CloseReason | null) ?? null,
    lastSeq: Number(row.lastSeq),
  };
}

/** The session if it belongs to the tenant. */
export async function sessionRowOfTenant(
  database: Database,
  tenantId: string,
  id: string,
): Promise<SessionRow | undefined> {
  const rows = await database.db.select().from(sessions)
    .where(and(eq(sessions.id, id), eq(sessions.tenantId, tenantId)));
  return rows[0];
}

/** A new session row (state connecting) routed to `nodeId`; returns its id. */
export async function createSessionRow(
  database: Database,
  row: {
    tenantId: string;
    apiKeyId: string | null;
    mode: string;
    options: SessionOptions;
    nodeId: string;
    kind?: SessionKind;
  },
): Promise<string> {
  const [created] = await database.db.insert(sessions).values(row).returning({ id: sessions.id });
  return created.id;
}

/** Remove a session row no origin ever accepted. */
export async function deleteSessionRow(database: Database, id: string): Promise<void> {
  await database.db.delete(sessions).where(eq(sessions.id, id));
}

/**
 * Remove a row no origin ever made live (a stream whose origin refused it): only while it is still
 * `connecting` and was never active, so a session the origin did run is never lost.
 */
export async function deleteUnstartedSessionRow(database: Database, id: string): Promise<void> {
  await database.query(
    sql`delete from sessions where id = ${id} and state = 'connecting' and active_at is null and last_seq = 0`,
  );
}

/** Route the session to another node (before asking that node to take it). */
export async function routeSession(database: Database, id: string, nodeId: string): Promise<void> {
  await database.query(sql`update sessions set node_id = ${nodeId}, updated_at = now() where id = ${id}`);
}

/** Sessions not yet closed, of a tenant or of one API key. */
export async function countLiveSessions(
  database: Database,
  of: { tenantId: string } | { apiKeyId: string },
): Promise<number> {
  const owner = "tenantId" in of ? sql`tenant_id = ${of.tenantId}` : sql`api_key_id = ${of.apiKeyId}`;
  const [{ n }] = await database.query<{ n: number }>(
    sql`select count(*)::int as n from sessions where ${owner} and state <> 'closed'`,
  );
  return Number(n);
}

/**
 * Close (`origin_lost`) the sessions of nodes that stopped heartbeating or deregistered, once the session itself
 * has not changed for as long. Idempotent, so several edges sweeping is harmless. Returns the closed ids.
 */
export async function closeSessionsOfLostNodes(database: Database, timeoutMs: number): Promise<string[]> {
  const rows = await database.query<{ id: string }>(sql`
    update sessions s set state = 'closed', reason = coalesce(s.reason, 'origin_lost'),
      closed_at = coalesce(s.closed_at, now()), updated_at = now()
    from nodes n
    where s.node_id = n.id and s.state <> 'closed'
      and (n.heartbeat_at < now() - make_interval(secs => ${timeoutMs / 1000}) or n.stopped_at is not null)
      and s.updated_at < now() - make_interval(secs => ${timeoutMs / 1000})
    returning s.id`);
  return rows.map((r) => r.id);
}
