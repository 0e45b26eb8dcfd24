/**
 * Sessions left behind by a previous process of the same origin node id. A process that died (kill -9, OOM, a
 * crash) never closed its sessions; when it is restarted under the same NODE_ID its registration makes the node
 * look alive again, so the edge's sweeper never sees them, and they would stay `active` forever (counting
 * against tenant limits). The new process settles them (`origin_lost`) before it serves.
 *
 * Only rows of exactly this node id: a supervised origin's generations have ids of their own
 * (`<base>.<generation>`), so a successor never touches its still-draining predecessor's sessions.
 * A `connecting` row touched within `connectingGraceMs` may be an edge routing a new session here right now: it
 * is left alone, and settled by a later pass if it is still `connecting` after the grace.
 */
import { sql } from "drizzle-orm";
import type { Database } from "./client.ts";

export async function settleOrphanedSessions(
  database: Database,
  nodeId: string,
  opts: { createdBefore: string; connectingGraceMs: number },
): Promise<string[]> {
  const rows = await database.query<{ id: string }>(sql`
    update sessions set state = 'closed', reason = coalesce(reason, 'origin_lost'),
      closed_at = coalesce(closed_at, now()), updated_at = now()
    where node_id = ${nodeId} and state <> 'closed' and created_at < ${opts.createdBefore}::timestamptz
      and (state <> 'connecting'
        or updated_at < now() - make_interval(secs => ${opts.connectingGraceMs / 1000}))
    returning id`);
  return rows.map((r) => r.id);
}

/** The database clock now, as text (the `createdBefore` of later passes). */
export async function databaseNow(database: Database): Promise<string> {
  const [row] = await database.query<{ now: string }>(sql`select now()::text as now`);
  return row.now;
}
