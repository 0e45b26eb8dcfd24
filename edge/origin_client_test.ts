import assert from "node:assert/strict";
import { OriginClient, OriginUnreachableError, originUnreachableResponse } from "./origin_client.ts";
import { ApiError } from "../lib/errors.ts";

async function unreachable(call: () => Promise<unknown>): Promise<OriginUnreachableError> {
  try {
    await call();
  } catch (e) {
    assert.ok(e instanceof OriginUnreachableError, String(e));
    return e;
  }
  throw new Error("the call did not fail");
}

Deno.test("origin client: a silent origin is a 504 after the timeout, a refused connection a 502; both JSON errors", async () => {
  const client = new OriginClient("secret", 300);
  // Accepts connections and never answers.
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const c of silent) held.push(c);
  })();
  const slow = await unreachable(() => client.call(`http://127.0.0.1:${silent.addr.port}`, "DELETE", "/x"));
  assert.equal(slow.timedOut, true);
  const r504 = originUnreachableResponse(slow);
  assert.ok(r504 instanceof ApiError);
  assert.equal(r504.status, 504);
  assert.equal(r504.code, "origin_error");
  assert.equal(r504.headers["Retry-After"], "1");
  silent.close();
  for (const c of held) c.close();
  await accepting.catch(() => {});

  // A port nobody listens on (just closed).
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = closed.addr.port;
  closed.close();
  const refused = await unreachable(() => client.call(`http://127.0.0.1:${port}`, "DELETE", "/x"));
  assert.equal(refused.timedOut, false);
  assert.equal(originUnreachableResponse(refused)?.status, 502);
  assert.equal(originUnreachableResponse(new Error("other")), undefined);
});
