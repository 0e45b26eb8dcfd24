/**
 * `GET /v1/engines`: the engines each live origin published in its node row (the edge reads the registry; it
 * never imports origin code), with the active recognizer and what it understands; /readyz on both sides says
 * which recognizer runs. Descriptors come from the real engine choice (engineDescriptors of a Config).
 */
import assert from "node:assert/strict";
import { api, startStack, testConfig } from "./harness.ts";
import { engineDescriptors } from "../origin/engine_config.ts";
import type { EnginesResponse } from "../protocol/engines.ts";

Deno.test("GET /v1/engines: live origins' engines, active recognizer, how to enable the others; /readyz", async () => {
  const empty = await Deno.makeTempDir();
  // an origin without the Moonshine model and without PocketSphinx (empty folders): auto → ctc
  const engines = engineDescriptors(
    testConfig({ ASR_ENGINE: "auto", SPHINX_LIB_DIR: empty, MOONSHINE_MODEL: empty }),
  );
  const stack = await startStack();
  try {
    const origin = await stack.startOrigin({ engines });
    const { key } = await stack.key(["sessions"]);
    const noAuth = await api(stack, "GET", "/v1/engines");
    assert.equal(noAuth.status, 401);
    const r = await api(stack, "GET", "/v1/engines", { key });
    assert.equal(r.status, 200, r.text);
    const body = r.body as EnginesResponse;
    const mine = body.origins.find((o) => o.node_id === origin.nodeId);
    assert.ok(mine, r.text);
    const active = mine.engines.filter((e) => e.kind === "asr" && e.active);
    assert.deepEqual(active.map((e) => [e.name, e.understands]), [["ctc", "synthetic English only"]]);
    const sphinx = mine.engines.find((e) => e.name === "sphinx")!;
    assert.equal(sphinx.understands, "human English");
    assert.match(sphinx.how_to_enable, /apt-get install libpocketsphinx3 pocketsphinx-en-us/);
    assert.ok(mine.engines.some((e) => e.kind === "tts" && e.active));

    const edgeReady = await api(stack, "GET", "/readyz");
    const recognizers =
      (edgeReady.body as { recognizers: Array<{ node_id: string; name: string }> }).recognizers;
    assert.deepEqual(recognizers.find((x) => x.node_id === origin.nodeId)?.name, "ctc", edgeReady.text);
    const originReady = await (await fetch(`${origin.url}/readyz`)).json();
    assert.deepEqual(originReady.recognizer.understands, "synthetic English only");

    // a draining origin is not offered
    await origin.close();
    const after = (await api(stack, "GET", "/v1/engines", { key })).body as EnginesResponse;
    assert.ok(!after.origins.some((o) => o.node_id === origin.nodeId));
  } finally {
    await stack.close();
  }
});
