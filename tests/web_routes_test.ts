/**
 * The web client as the edge serves it: the page, script and stylesheet on the API's origin with a strict CSP,
 * strong ETags (304 on revalidation) and the right types; and the committed bundle (web/dist/app.js) is what
 * `deno task web:build` makes from web/src today.
 */
import assert from "node:assert/strict";
import { startStack } from "./harness.ts";
import { webRoutes } from "../edge/web_routes.ts";
import { buildWebBundle, DIST } from "../web/build.ts";

Deno.test("edge serves the web client: page, script, stylesheet, CSP, ETag revalidation", async () => {
  const stack = await startStack({ routes: [webRoutes] });
  try {
    const page = await fetch(stack.url + "/");
    const html = await page.text();
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
    const csp = page.headers.get("content-security-policy") ?? "";
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /connect-src 'self'/);
    assert.ok(!csp.includes("unsafe-inline"), "no inline script or style allowed");
    assert.equal(page.headers.get("x-content-type-options"), "nosniff");
    assert.match(html, /<script type="module" src="\/web\/app.js"><\/script>/);
    assert.ok(!/<script>|\son\w+="/.test(html), "no inline script or handler attributes (CSP)");
    // Every form control in the shell has a label.
    for (const [, id] of html.matchAll(/<(?:input|select|textarea|meter)[^>]*\bid="([^"]+)"/g)) {
      assert.ok(
        html.includes(`for="${id}"`) || id === "api-key" && html.includes('for="api-key"'),
        `label for #${id}`,
      );
    }

    const js = await fetch(stack.url + "/web/app.js");
    assert.equal(js.status, 200);
    assert.match(js.headers.get("content-type") ?? "", /^text\/javascript/);
    const body = await js.text();
    assert.ok(body.includes("/v1/sessions") && body.includes("/v1/tokens"));
    const etag = js.headers.get("etag")!;
    assert.match(etag, /^"[0-9a-f]{24}"$/);
    const again = await fetch(stack.url + "/web/app.js", { headers: { "if-none-match": etag } });
    await again.body?.cancel();
    assert.equal(again.status, 304);

    const css = await fetch(stack.url + "/web/style.css");
    assert.match(css.headers.get("content-type") ?? "", /^text\/css/);
    assert.ok((await css.text()).includes(".telop"));

    // The API under the same origin is untouched: unknown API paths still get the JSON error shape.
    const nf = await fetch(stack.url + "/v1/nope");
    assert.equal(nf.status, 404);
    assert.equal(((await nf.json()) as { error: { code: string } }).error.code, "not_found");
  } finally {
    await stack.close();
  }
});

Deno.test("web/dist/app.js is up to date with web/src (run `deno task web:build`)", async () => {
  const tmp = await Deno.makeTempFile({ suffix: ".js" });
  try {
    const fresh = await buildWebBundle(tmp);
    const committed = await Deno.readTextFile(DIST);
    assert.ok(fresh === committed, "web/dist/app.js is stale: run `deno task web:build` and commit it");
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
});
