/**
 * A graceful close keeps the last words: the session asks its pipeline to finish the open segment before the
 * `bye`, and the result it emits meanwhile is stored and sent (before the bye). The wait is bounded
 * (`finishSpeechMs`), and an `error` close does not wait at all. A real WebSocket pair and test database; the
 * pipeline is a double that emits a confirmed transcript when finished (the recognizer's part is tested in
 * origin/pipeline/recognizer_test.ts).
 */
import assert from "node:assert/strict";
import type { Database } from "../../db/client.ts";
import { claimSession, eventsAfter } from "../../db/sessions.ts";
import { createTenant } from "../../db/api_keys.ts";
import { withTestDatabase } from "../../db/testing.ts";
import { configureLogging } from "../../lib/log.ts";
import type { CloseReason, ServerEvent } from "../../protocol/session_messages.ts";
import type { PipelineHost, SpeechPipeline } from "../pipeline/types.ts";
import { StreamSession } from "./stream_session.ts";

configureLogging({ level: "error" });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Emits one confirmed transcript `delayMs` after finish() is called; `never` makes finish() hang. */
class FinishingPipeline implements SpeechPipeline {
  state: "running" | "closed" = "running";
  finishCalls = 0;
  constructor(
    private readonly host: PipelineHost,
    private readonly o: { delayMs: number; never?: boolean },
  ) {}
  push(): void {}
  say(): Promise<void> {
    return Promise.resolve();
  }
  setMuted(): void {}
  setOptions(): void {}
  async finish(): Promise<void> {
    this.finishCalls++;
    if (this.o.never) return await new Promise<void>(() => {});
    await sleep(this.o.delayMs);
    await this.host.emit({
      type: "transcript",
      segment_id: 1,
      status: "confirmed",
      alternatives: [{ text: "last words", score: 0 }],
      stable_text: "last words",
      unstable_text: "",
      start_ms: 0,
      end_ms: 500,
      latency_ms: this.o.delayMs,
    });
  }
  close(): Promise<void> {
    this.state = "closed";
    return Promise.resolve();
  }
}

async function withSession(
  database: Database,
  pipeline: { delayMs: number; never?: boolean },
  run: (
    s: { session: StreamSession; pipeline: FinishingPipeline; events: ServerEvent[]; ws: WebSocket },
  ) => Promise<void>,
): Promise<void> {
  const tenant = await createTenant(database, "finish");
  const id = crypto.randomUUID();
  await claimSession(database, {
    id,
    tenantId: tenant.id,
    nodeId: "n",
    mode: "transcribe",
    options: { mode: "transcribe" },
    kind: "websocket",
  });
  let session: StreamSession | undefined;
  let fake: FinishingPipeline | undefined;
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    session = new StreamSession({
      id,
      tenantId: tenant.id,
      nodeId: "n",
      options: { mode: "transcribe" } as StreamSession["options"],
      database,
      socket,
      sampleRate: 16000,
      config: { mediaTimeoutMs: 60_000, finishSpeechMs: 1_000 },
      pipelineFactory: (host) => (fake = new FinishingPipeline(host, pipeline)),
    });
    session.start().catch(() => {});
    return response;
  });
  const ws = new WebSocket(`ws://127.0.0.1:${server.addr.port}/`);
  const events: ServerEvent[] = [];
  ws.onmessage = (e) => {
    if (typeof e.data === "string") events.push(JSON.parse(e.data));
  };
  try {
    const end = performance.now() + 20_000;
    while (!events.some((e) => e.type === "state" && e.state === "active")) {
      if (performance.now() > end) throw new Error(`never active: ${JSON.stringify(events)}`);
      await sleep(20);
    }
    await run({ session: session!, pipeline: fake!, events, ws });
  } finally {
    ws.close();
    await session?.close("admin");
    await server.shutdown();
  }
}

const types = (evs: ServerEvent[]) => evs.map((e) => e.type);

Deno.test({
  name: "session close: the open segment's result is emitted, stored and sent before the bye",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withTestDatabase(async (database) => {
      await withSession(database, { delayMs: 200 }, async ({ session, pipeline, events, ws }) => {
        const closed = new Promise<void>((r) => ws.addEventListener("close", () => r()));
        ws.send(JSON.stringify({ type: "bye" }));
        await closed;
        await session.closed;
        assert.equal(pipeline.finishCalls, 1);
        assert.deepEqual(types(events).slice(-2), ["transcript", "bye"]);
        const stored = await eventsAfter(database, session.id, 0);
        assert.deepEqual(types(stored).slice(-2), ["transcript", "bye"]);
        const last = stored.at(-2);
        assert.equal(last?.type === "transcript" ? last.alternatives[0].text : "", "last words");
      });
    }),
});

Deno.test({
  name: "session close: the wait for the last segment is bounded; an error close does not wait",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withTestDatabase(async (database) => {
      await withSession(database, { delayMs: 0, never: true }, async ({ session, pipeline, events }) => {
        const t0 = performance.now();
        await session.close("client_hangup" as CloseReason);
        const ms = performance.now() - t0;
        assert.equal(pipeline.finishCalls, 1);
        assert.ok(ms >= 900, `closed after ${ms.toFixed(0)} ms, before the 1000 ms bound`);
        assert.ok(!types(events).includes("transcript"));
        assert.equal((await eventsAfter(database, session.id, 0)).at(-1)?.type, "bye");
      });
      await withSession(database, { delayMs: 0 }, async ({ session, pipeline, events }) => {
        await session.close("error");
        assert.equal(pipeline.finishCalls, 0);
        assert.ok(!types(events).includes("transcript"));
      });
    }),
});
