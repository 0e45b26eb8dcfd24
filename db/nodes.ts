/**
 * Origin node registry. Origins upsert themselves and heartbeat (load included); the edge picks the
 * least-loaded live, non-draining node with spare capacity. "Live" = heartbeat newer than the timeout,
 * judged by the database clock so node clocks don't matter.
 */
import { sql } from "drizzle-orm";
import type { Database } from "./client.ts";
import type { EngineDescriptor } from "../protocol/engines.ts";

export interface NodeInfo {
  id: string;
  url: string;
  capacity: number;
  load: number;
  draining: boolean;
  version: string;
  engines: EngineDescriptor[];
  started_at: string;
  heartbeat_at: string;
  alive: boolean;
}

export async function registerNode(
  database: Database,
  n: { id: string; url: string; capacity: number; version: string; engines?: EngineDescriptor[] },
): Promise<void> {
  const engines = JSON.stringify(n.engines ?? []);
  await database.query(sql`
    insert into nodes (id, url, capacity, load, draining, version, engines, started_at, heartbeat_at, stopped_at)
    values (${n.id}, ${n.url}, ${n.capacity}, 0, false, ${n.version}, ${engines}::jsonb, now(), now(), null)
    on conflict (id) do update set url = excluded.url, capacity = excluded.capacity, load = 0, draining = false,
      version = excluded.version, engines = excluded.engines, started_at = now(), heartbeat_at = now(),
      stopped_at = null`);
}

export async function heartbeatNode(
  database: Database,
  id: string,
  load: number,
  draining: boolean,
): Promise<void> {
  await database.query(sql`update nodes set heartbeat_at = now(), load = ${load}, draining = ${draining}
    where id = ${id}`);
}

/** Deregister on clean shutdown: the node is immediately not alive (heartbeat far in the past). */
export async function stopNode(database: Database, id: string): Promise<void> {
  await database.query(sql`update nodes set draining = true, stopped_at = now(),
    heartbeat_at = now() - interval '1 day' where id = ${id}`);
}

export async function listNodes(database: Database, timeoutMs: number): Promise<NodeInfo[]> {
  const rows = await database.query<NodeInfo>(sql`
    select id, url, capacity, load, draining, version, engines, started_at::text, heartbeat_at::text,
      (heartbeat_at > now() - make_interval(secs => ${timeoutMs / 1000}) and stopped_at is null) as alive
    from nodes order by id`);
  return rows.map((r) => ({ ...r, capacity: Number(r.capacity), load: Number(r.load) }));
}

/**
 * Live, non-draining nodes with spare capacity, least loaded first (load / capacity, then load), excluding
 * `exclude`. The load used is the node's reported load plus sessions the database already routed to it that are
 * not closed yet and were created after its last heartbeat (so a burst of POSTs doesn't all land on one node).
 */
export async function pickNodes(
  database: Database,
  timeoutMs: number,
  exclude: string[] = [],
): Promise<NodeInfo[]> {
  const rows = await database.query<NodeInfo & { effective_load: number }>(sql`
    select n.id, n.url, n.capacity, n.load, n.draining, n.version, n.started_at::text, n.heartbeat_at::text,
      true as alive,
      n.load + (select count(*)::int from sessions s where s.node_id = n.id and s.state <> 'closed'
        and s.created_at > n.heartbeat_at) as effective_load
    from nodes n
    where n.heartbeat_at > now() - make_interval(secs => ${timeoutMs / 1000}) and n.stopped_at is null
      and not n.draining`);
  return rows
    .map((r) => ({ ...r, capacity: Number(r.capacity), load: Number(r.effective_load) }))
    .filter((r) => !exclude.includes(r.id) && r.load < r.capacity)
    .sort((a, b) => a.load / a.capacity - b.load / b.capacity || a.load - b.load || a.id.localeCompare(b.id));
}

/**
 * A node's URL, whether its heartbeat is within `timeoutMs` and whether it deregistered; undefined when it never
 * registered. Callers decide what a stale heartbeat means (after a database outage it proves nothing yet).
 */
export async function nodeStatus(
  database: Database,
  id: string,
  timeoutMs: number,
): Promise<{ url: string; alive: boolean; stopped: boolean } | undefined> {
  const rows = await database.query<{ url: string; alive: boolean; stopped: boolean }>(sql`
    select url, heartbeat_at > now() - make_interval(secs => ${timeoutMs / 1000}) as alive,
      stopped_at is not null as stopped from nodes where id = ${id}`);
  return rows[0];
}

/** The URL of a live node (heartbeat within `timeoutMs`, not stopped), or null. */
export async function liveNodeUrl(database: Database, id: string, timeoutMs: number): Promise<string | null> {
  const node = await nodeStatus(database, id, timeoutMs);
  return node?.alive && !node.stopped ? node.url : null;
}
