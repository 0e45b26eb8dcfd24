/**
 * In-process test stacks: a fresh migrated database (PGlite, or real Postgres with PARLEY_TEST_DATABASE_URL),
 * an edge and optionally origins on ephemeral loopback ports, a bootstrap admin key, and one close() that
 * tears it all down in order.
 */
import { bootstrapAdminKey, createApiKey, createTenant } from "../db/api_keys.ts";
import type { Database } from "../db/client.ts";
import { openTestDatabase } from "../db/testing.ts";
import { type Config, parseConfig } from "../lib/config.ts";
import { configureLogging, log } from "../lib/log.ts";
import { EdgeServer } from "../edge/server.ts";
import type { RouteGroup } from "../edge/app.ts";
import { type OriginParts, OriginServer } from "../origin/server.ts";
import type { Scope } from "../protocol/api.ts";
import { ApiError } from "../lib/errors.ts";
import type { SessionService } from "../origin/services.ts";

if (!Deno.env.get("TEST_LOG")) configureLogging({ level: "error" });

export function testConfig(over: Record<string, string> = {}): Config {
  return parseConfig({
    HOST: "127.0.0.1",
    PORT: "0",
    ORIGIN_HOST: "127.0.0.1",
    ORIGIN_PORT: "0",
    HEARTBEAT_MS: "200",
    NODE_TIMEOUT_MS: "1000",
    RATE_LIMIT_RPS: "1000",
    RATE_LIMIT_BURST: "1000",
    // results asserted by tests are the bundled ctc recognizer's on espeak speech (auto would pick Moonshine)
    ASR_ENGINE: "ctc",
    ...over,
  });
}

export interface Stack {
  database: Database;
  edge: EdgeServer;
  origins: OriginServer[];
  url: string;
  adminKey: string;
  tenantId: string;
  /** Create a key in a (new or given) tenant. */
  key(scopes: Scope[], tenantId?: string): Promise<{ key: string; tenantId: string; id: string }>;
  startOrigin(parts?: OriginParts, over?: Record<string, string>): Promise<OriginServer>;
  close(): Promise<void>;
}

export async function startStack(opts: {
  origins?: number;
  parts?: () => OriginParts | Promise<OriginParts>;
  config?: Record<string, string>;
  routes?: RouteGroup[];
} = {}): Promise<Stack> {
  const database = await openTestDatabase();
  const config = testConfig(opts.config);
  const boot = await bootstrapAdminKey(database);
  const edge = await EdgeServer.start(config, database, log, opts.routes ?? []);
  const origins: OriginServer[] = [];
  let n = 0;
  const stack: Stack = {
    database,
    edge,
    origins,
    url: edge.url.replace("localhost", "127.0.0.1"),
    adminKey: boot!.key,
    tenantId: boot!.tenantId,
    async key(scopes, tenantId) {
      const t = tenantId ?? (await createTenant(database, `t-${crypto.randomUUID().slice(0, 6)}`)).id;
      const k = await createApiKey(database, { tenantId: t, name: "test", scopes });
      return { key: k.key, tenantId: t, id: k.id };
    },
    async startOrigin(parts, over) {
      const o = await OriginServer.start(
        testConfig({
          NODE_ID: `test-origin-${++n}-${crypto.randomUUID().slice(0, 4)}`,
          ...opts.config,
          ...over,
        }),
        database,
        log,
        parts ?? (opts.parts ? await opts.parts() : {}),
      );
      origins.push(o);
      return o;
    },
    async close() {
      for (const o of origins) await o.close();
      await edge.close();
      await database.close();
    },
  };
  for (let i = 0; i < (opts.origins ?? 0); i++) await stack.startOrigin();
  return stack;
}

export async function api(
  stack: { url: string },
  method: string,
  path: string,
  opts: { key?: string; json?: unknown; body?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; body: unknown; text: string }> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  let body: string | undefined = opts.body;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers["content-type"] ??= "application/json";
  }
  const res = await fetch(stack.url + path, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

/** A minimal SDP offer with one audio m-line: enough for the edge's checks and for session-service doubles. */
export const AUDIO_OFFER = [
  "v=0",
  "o=- 1 2 IN IP4 127.0.0.1",
  "s=-",
  "t=0 0",
  "m=audio 9 UDP/TLS/RTP/SAVPF 111",
  "c=IN IP4 0.0.0.0",
  "a=ice-ufrag:abcd",
  "a=ice-pwd:abcdefghijklmnopqrstuvwx",
  "a=rtpmap:111 opus/48000/2",
  "",
].join("\r\n");

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A session service double whose origin refuses every offer with a 400 (the edge's paths without media). */
export function rejectingService(): SessionService {
  return {
    create: () => Promise.reject(new ApiError(400, "bad_request", "offer rejected by test origin")),
    get: () => null,
    say: () => Promise.resolve(null),
    end: () => Promise.resolve(null),
    load: 0,
    drain() {},
    close: () => Promise.resolve(),
  };
}
