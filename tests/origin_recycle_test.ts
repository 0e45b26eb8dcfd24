/**
 * Origin recycling, in process: the counting and hand-over rules of OriginServer (the supervisor and real child
 * processes are covered by origin/supervisor_test.ts and tests/e2e/session_cases.ts), and the edge reading the
 * node list again when every origin it picked refused.
 */
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { OriginBusyError, type SessionService } from "../origin/services.ts";
import { api, AUDIO_OFFER as OFFER, startStack } from "./harness.ts";

/** Unit-level double: accepts every offer unless told to refuse; tracks its live load. */
function service(
  opts: { refuse?: () => Promise<void> } = {},
): SessionService & { created: string[]; live: Set<string>; drained: boolean } {
  const created: string[] = [];
  const live = new Set<string>();
  const svc = {
    created,
    live,
    drained: false,
    async create(req: { session_id: string }) {
      if (opts.refuse) {
        await opts.refuse();
        throw new OriginBusyError("origin is draining");
      }
      created.push(req.session_id);
      live.add(req.session_id);
      return { sdp: "v=0\r\nanswer\r\n" };
    },
    get: () => null,
    say: () => Promise.resolve(null),
    end: (id: string) => {
      live.delete(id);
      return Promise.resolve(null);
    },
    get load() {
      return live.size;
    },
    drain() {
      svc.drained = true;
    },
    close: () => Promise.resolve(),
  };
  return svc as never;
}

/** POST the SDP offer to the edge (the WHIP-style variant). */
function postOffer(stack: { url: string }, key: string) {
  return api(stack, "POST", "/v1/sessions", {
    key,
    body: OFFER,
    headers: { "content-type": "application/sdp" },
  });
}

async function captureStdout<T>(fn: () => Promise<T>): Promise<{ value: T; lines: string[] }> {
  const lines: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.map(String).join(" "));
  try {
    return { value: await fn(), lines };
  } finally {
    console.log = orig;
  }
}

Deno.test("recycling origin: 'soon' at 90%, keeps accepting past its count until the successor serves, then drains and resolves when empty", async () => {
  const s = await startStack();
  try {
    const k = await s.key(["sessions"]);
    const svc = service();
    const closed: string[] = [];
    const component = (name: string, closeOnRecycle: boolean) => ({
      name,
      ready: () => true,
      close: () => Promise.resolve(void closed.push(name)),
      closeOnRecycle,
    });
    const o = await s.startOrigin({
      sessions: svc,
      components: [component("engines", false), component("jobs", true)],
      recycleAfterSessions: 3,
      recycleDrainMaxMs: 60_000,
    });
    let recycled = false;
    void o.recycled.then(() => recycled = true);
    const post = () => postOffer(s, k.key);
    const { lines } = await captureStdout(async () => {
      for (let i = 0; i < 4; i++) assert.equal((await post()).status, 201); // the 4th: no successor yet
    });
    assert.deepEqual(lines, [`Parley origin ${o.nodeId} recycling soon`]);
    assert.equal(o.state, "running", "no successor serving: still accepting past the count");
    const { lines: after } = await captureStdout(() => o.successorServing());
    assert.deepEqual(after, [`Parley origin ${o.nodeId} recycling after 4 sessions`]);
    assert.equal(o.state, "draining");
    assert.ok(svc.drained);
    assert.deepEqual(closed, ["jobs"], "job workers stop at once; the engines serve the live sessions on");
    const [node] = await s.database.query<{ draining: boolean }>(
      sql`select draining from nodes where id = ${o.nodeId}`,
    );
    assert.equal(node.draining, true, "the heartbeat told the edge at once");
    assert.equal((await post()).status, 503, "nobody else accepts");
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(recycled, false, "live sessions keep the process");
    for (const id of [...svc.live]) await svc.end(id, "client_hangup");
    await o.recycled;
    assert.equal(svc.created.length, 4);
  } finally {
    await s.close();
  }
});

Deno.test("recycling origin: sessions still live after RECYCLE_DRAIN_MAX_MS do not hold it", async () => {
  const s = await startStack();
  try {
    const k = await s.key(["sessions"]);
    const svc = service();
    const o = await s.startOrigin({ sessions: svc, recycleAfterSessions: 1, recycleDrainMaxMs: 300 });
    await captureStdout(async () => {
      await o.successorServing();
      assert.equal((await postOffer(s, k.key)).status, 201);
    });
    assert.equal(o.state, "draining");
    const t0 = performance.now();
    await o.recycled;
    assert.ok(performance.now() - t0 >= 250, "waited for the drain limit");
    assert.equal(svc.live.size, 1, "the session was still live: close() ends it with origin_shutdown");
  } finally {
    await s.close();
  }
});

Deno.test("routing: when every origin on the list refuses, the edge reads the node list once more", async () => {
  const s = await startStack();
  try {
    const k = await s.key(["sessions"]);
    const successor = service();
    // The only origin listed refuses (it began draining after the edge read the list); meanwhile a successor
    // registered. Without the second read the client would get 503.
    const old = await s.startOrigin({
      sessions: service({ refuse: async () => void await s.startOrigin({ sessions: successor }) }),
    });
    const r = await api(s, "POST", "/v1/sessions", {
      key: k.key,
      json: { sdp: OFFER, options: { mode: "echo" } },
    });
    assert.equal(r.status, 201, r.text);
    assert.equal(successor.created.length, 1);
    assert.notEqual((r.body as { node_id: string }).node_id, old.nodeId);
  } finally {
    await s.close();
  }
});
