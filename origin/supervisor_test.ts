import assert from "node:assert/strict";
import { log } from "../lib/log.ts";
import { OriginSupervisor, type SupervisorOptions } from "./supervisor.ts";
import {
  decodeSupervisorMessage,
  encodeSupervisorMessage,
  type SupervisorMessage,
} from "./supervisor_protocol.ts";

const FAKE = new URL("../tests/fixtures/fake_origin.ts", import.meta.url).pathname;

function supervisor(modes: string, extra: Partial<SupervisorOptions> = {}) {
  const lines: string[] = [];
  const s = new OriginSupervisor({
    command: Deno.execPath(),
    args: ["run", "-A", FAKE],
    env: { FAKE_MODES: modes },
    baseNodeId: "t",
    basePort: 40100,
    originUrl: "http://origin.internal:1/",
    log: log.child({ test: "supervisor" }),
    restartBackoffMs: { min: 100, max: 400 },
    stopGraceMs: 1500,
    onLine: (line) => lines.push(line),
    ...extra,
  });
  return { s, lines };
}

async function until(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

Deno.test("supervisor: a recycling child gets its successor on 'recycling soon', exits on its own; close cascades", async () => {
  const { s, lines } = supervisor("recycle,serve");
  s.start();
  await until(() => lines.some((l) => l.includes("t.1 serving")), "generation 1 serving");
  await until(() => s.children().length === 1, "generation 0 exited after draining");
  const order = (re: RegExp) => lines.findIndex((l) => re.test(l));
  assert.ok(
    order(/t\.1 serving/) < order(/t\.0 recycling after/),
    "the old one stops accepting after its successor serves",
  );
  const [c] = s.children();
  assert.equal(c.generation, 1);
  assert.equal(c.role, "serving");
  assert.equal(c.nodeId, "t.1");
  assert.equal(c.port, 40101, "the next port of the span");
  assert.ok(lines.includes("Parley origin t.1 serving at http://origin.internal:40101"), lines.join("\n"));
  assert.equal(s.crashes, 0);
  assert.equal(s.started, 2);
  await Promise.all([s.close(), s.close()]); // idempotent
  assert.equal(s.state, "closed");
  assert.equal(s.children().length, 0);
  assert.equal((await c.exited).code, 0);
  assert.throws(() => s.start(), /closed/);
});

Deno.test("supervisor: a crashed serving child is restarted with a backoff", async () => {
  const { s } = supervisor("crash,crash,serve");
  s.start();
  await until(() => s.children().some((c) => c.generation === 2 && c.role === "serving"), "generation 2 up");
  assert.equal(s.crashes, 2);
  assert.equal(s.started, 3);
  await s.close();
  assert.equal(s.children().length, 0);
});

Deno.test("supervisor: a successor that dies while loading is replaced, so the old generation can still recycle", async () => {
  const { s, lines } = supervisor("recycle,crash-early,serve");
  s.start();
  await until(() => lines.some((l) => l.includes("t.2 serving")), "generation 2 serving");
  await until(() => s.children().length === 1, "generation 0 recycled after generation 2 served");
  assert.equal(s.children()[0].generation, 2);
  assert.equal(s.crashes, 1);
  await s.close();
});

Deno.test("supervisor: close() SIGKILLs a child that ignores SIGTERM after the grace", async () => {
  const { s } = supervisor("stubborn", { stopGraceMs: 500 });
  s.start();
  await until(() => s.children()[0]?.role === "serving", "serving");
  const [c] = s.children();
  const t0 = performance.now();
  await s.close();
  assert.equal((await c.exited).signal, "SIGKILL");
  assert.ok(performance.now() - t0 >= 450);
  assert.equal(s.state, "closed");
});

Deno.test("supervisor protocol: messages survive a line round trip; human lines and look-alikes are not messages", () => {
  const messages: SupervisorMessage[] = [
    { type: "serving", nodeId: "n.0", url: "http://127.0.0.1:9" },
    { type: "recycling_soon", nodeId: "n.0" },
    { type: "recycling", nodeId: "n.0", accepted: 12 },
    { type: "successor_serving" },
  ];
  for (const m of messages) {
    const line = encodeSupervisorMessage(m);
    assert.ok(!line.includes("\n"));
    assert.deepEqual(decodeSupervisorMessage(line), m);
  }
  assert.equal(decodeSupervisorMessage("Parley origin n.0 serving at http://127.0.0.1:9"), null);
  assert.equal(decodeSupervisorMessage('{"level":"info","msg":"serving"}'), null);
  assert.equal(decodeSupervisorMessage('{"parley_supervisor":{"type":"reboot"}}'), null);
  assert.equal(decodeSupervisorMessage('{"parley_supervisor":{"type":"recycling","nodeId":"n.0"}}'), null);
  assert.equal(decodeSupervisorMessage('{"parley_supervisor":'), null);
});
