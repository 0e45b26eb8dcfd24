/**
 * Closing an edge ends its long-lived streams (room viewers over SSE) instead of waiting for them: Deno.serve's
 * graceful shutdown waits for open responses, so a connected viewer used to hold a SIGTERM until the grace ran
 * out (exit 1).
 */
import assert from "node:assert/strict";
import { api, startStack } from "./harness.ts";
import { openStreamCount } from "../edge/open_streams.ts";

Deno.test("edge close: an open room viewer stream is ended, the close completes promptly", async () => {
  const stack = await startStack();
  let closedEdge = false;
  try {
    const room = await api(stack, "POST", "/v1/rooms", { key: stack.adminKey, json: { name: "talk" } });
    assert.equal(room.status, 201, room.text);
    const id = (room.body as { id: string }).id;
    const res = await fetch(`${stack.url}/v1/rooms/${id}/events`, {
      headers: { authorization: `Bearer ${stack.adminKey}` },
    });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert(!first.done, "the viewer got its opening frame");
    assert.equal(openStreamCount(), 1);
    const t0 = performance.now();
    await stack.edge.close();
    closedEdge = true;
    const took = performance.now() - t0;
    // the stream ends (done) rather than hanging; any bytes before the end are fine
    let r = await reader.read();
    while (!r.done) r = await reader.read();
    assert(took < 5_000, `edge close took ${took.toFixed(0)} ms with a viewer connected`);
    assert.equal(openStreamCount(), 0);
  } finally {
    if (closedEdge) await stack.database.close();
    else await stack.close();
  }
});
