import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { sessions } from "../db/schema.ts";
import { ttsRoutes } from "../edge/routes/tts.ts";
import { api, startStack } from "./harness.ts";

Deno.test("auth: credentials, scopes, tokens, revocation, tenant isolation", async (t) => {
  const s = await startStack();
  try {
    const a = await s.key(["sessions", "transcripts:read"]);
    const b = await s.key(["sessions"]);
    const ttsOnly = await s.key(["tts"], a.tenantId);
    const [sessA] = await s.database.db.insert(sessions).values({ tenantId: a.tenantId, state: "closed" })
      .returning({ id: sessions.id });

    await t.step("missing / malformed / unknown credentials → 401", async () => {
      for (
        const headers of [{}, { authorization: "Basic abc" }, { authorization: "Bearer pk_nope" }] as Record<
          string,
          string
        >[]
      ) {
        const r = await api(s, "GET", `/v1/sessions/${sessA.id}`, { headers });
        assert.equal(r.status, 401);
        assert.equal((r.body as { error: { code: string } }).error.code, "unauthorized");
      }
    });

    await t.step("wrong scope → 403", async () => {
      const r = await api(s, "GET", `/v1/sessions/${sessA.id}`, { key: ttsOnly.key });
      assert.equal(r.status, 403);
      assert.equal((r.body as { error: { code: string } }).error.code, "forbidden");
    });

    await t.step("own tenant sees its session; another tenant gets 404", async () => {
      assert.equal((await api(s, "GET", `/v1/sessions/${sessA.id}`, { key: a.key })).status, 200);
      const r = await api(s, "GET", `/v1/sessions/${sessA.id}`, { key: b.key });
      assert.equal(r.status, 404);
      assert.equal((await api(s, "DELETE", `/v1/sessions/${sessA.id}`, { key: b.key })).status, 404);
    });

    await t.step("keys are stored hashed only", async () => {
      const rows = await s.database.query<{ hash: string; prefix: string }>(
        sql`select hash, prefix from api_keys`,
      );
      for (const r of rows) {
        assert.match(r.hash, /^[0-9a-f]{64}$/);
        assert.equal(r.prefix.length, 10);
      }
      const dump = JSON.stringify(await s.database.query(sql`select * from api_keys`));
      for (const k of [a.key, b.key, ttsOnly.key, s.adminKey]) assert.ok(!dump.includes(k.slice(10)));
    });

    await t.step(
      "browser tokens: narrowed scopes, no escalation, session-bound, revocation kills them",
      async () => {
        const minted = await api(s, "POST", "/v1/tokens", {
          key: a.key,
          json: { scopes: ["sessions"], ttl_s: 600 },
        });
        assert.equal(minted.status, 201);
        const token = (minted.body as { token: string }).token;
        assert.equal((await api(s, "GET", `/v1/sessions/${sessA.id}`, { key: token })).status, 200);
        // escalation beyond the key's scopes
        const esc = await api(s, "POST", "/v1/tokens", { key: a.key, json: { scopes: ["tts"] } });
        assert.equal(esc.status, 403);
        const adm = await api(s, "POST", "/v1/tokens", { key: s.adminKey, json: { scopes: ["admin"] } });
        assert.equal(adm.status, 403);
        // a token cannot mint tokens
        assert.equal((await api(s, "POST", "/v1/tokens", { key: token, json: {} })).status, 403);
        // ttl above 1 h is refused
        assert.equal((await api(s, "POST", "/v1/tokens", { key: a.key, json: { ttl_s: 7200 } })).status, 400);
        // bound to another session
        const other = crypto.randomUUID();
        const bound = await api(s, "POST", "/v1/tokens", { key: a.key, json: { session_id: other } });
        const bt = (bound.body as { token: string }).token;
        assert.equal((await api(s, "GET", `/v1/sessions/${sessA.id}`, { key: bt })).status, 403);
        // tampered token
        const tampered = token.slice(0, -3) + (token.endsWith("A") ? "BBB" : "AAA");
        assert.equal((await api(s, "GET", `/v1/sessions/${sessA.id}`, { key: tampered })).status, 401);
        // expired token
        const p = await s.edge.ctx.auth.authenticate(`Bearer ${a.key}`);
        const expired = await s.edge.ctx.auth.mintToken(p, { scopes: ["sessions"], ttlSeconds: -5 });
        const er = await api(s, "GET", `/v1/sessions/${sessA.id}`, { key: expired.token });
        assert.equal(er.status, 401);
        assert.match((er.body as { error: { message: string } }).error.message, /expired/);
        // revoke the key through the admin API of ANOTHER tenant: 404; of its own tenant's admin: works
        const adminA = await s.key(["admin"], a.tenantId);
        assert.equal((await api(s, "DELETE", `/v1/keys/${a.id}`, { key: s.adminKey })).status, 404);
        assert.equal((await api(s, "DELETE", `/v1/keys/${a.id}`, { key: adminA.key })).status, 204);
        assert.equal((await api(s, "GET", `/v1/sessions/${sessA.id}`, { key: a.key })).status, 401);
        assert.equal((await api(s, "GET", `/v1/sessions/${sessA.id}`, { key: token })).status, 401);
      },
    );

    await t.step("admin key API lists only its tenant's keys and returns the secret once", async () => {
      const created = await api(s, "POST", "/v1/keys", {
        key: s.adminKey,
        json: { name: "x", scopes: ["tts"] },
      });
      assert.equal(created.status, 201);
      assert.match((created.body as { key: string }).key, /^pk_[A-Za-z0-9_-]{43}$/);
      const list = await api(s, "GET", "/v1/keys", { key: s.adminKey });
      const keys = (list.body as { keys: { prefix: string; key?: string }[] }).keys;
      assert.ok(keys.every((k) => k.key === undefined));
      assert.equal(keys.length, 2); // bootstrap + x, none from other tenants
      assert.equal((await api(s, "GET", "/v1/keys", { key: b.key })).status, 403);
    });
  } finally {
    await s.close();
  }
});

Deno.test("rate limit: 429 with Retry-After beyond the burst", async () => {
  const s = await startStack({ config: { RATE_LIMIT_RPS: "1", RATE_LIMIT_BURST: "3" } });
  try {
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 5; i++) {
      const r = await api(s, "GET", "/v1/keys", { key: s.adminKey });
      statuses.push(r.status);
      if (r.status === 429) retryAfter = r.headers.get("retry-after");
    }
    assert.deepEqual(statuses.slice(0, 3), [200, 200, 200]);
    assert.equal(statuses[4], 429);
    assert.ok(Number(retryAfter) >= 1);
  } finally {
    await s.close();
  }
});

Deno.test("auth: a session-bound token cannot carry 'tts' (minting 400; default scopes leave it out)", async () => {
  const s = await startStack({ routes: [ttsRoutes] });
  try {
    const k = await s.key(["sessions", "tts"]);
    const sid = crypto.randomUUID();
    const refused = await api(s, "POST", "/v1/tokens", {
      key: k.key,
      json: { scopes: ["sessions", "tts"], session_id: sid },
    });
    assert.equal(refused.status, 400, refused.text);
    assert.equal((refused.body as { error: { code: string } }).error.code, "validation_failed");
    assert.match((refused.body as { error: { message: string } }).error.message, /session.*tts/);
    // Without explicit scopes a session-bound token gets the key's scopes minus tts.
    const dflt = await api(s, "POST", "/v1/tokens", { key: k.key, json: { session_id: sid } });
    assert.equal(dflt.status, 201, dflt.text);
    assert.deepEqual((dflt.body as { scopes: string[] }).scopes, ["sessions"]);
    const bt = (dflt.body as { token: string }).token;
    assert.equal((await api(s, "GET", "/v1/tts/jobs", { key: bt })).status, 403);
    // A session-bound token that claims tts (minted directly, as an older edge could have) cannot use it.
    const p = await s.edge.ctx.auth.authenticate(`Bearer ${k.key}`);
    const legacy = await s.edge.ctx.auth.mintToken(p, {
      scopes: ["sessions", "tts"],
      ttlSeconds: 60,
      sessionId: sid,
    });
    assert.equal((await api(s, "GET", "/v1/tts/jobs", { key: legacy.token })).status, 403);
    // An unbound token keeps tts.
    const free = await api(s, "POST", "/v1/tokens", { key: k.key, json: { scopes: ["tts"] } });
    assert.equal(free.status, 201);
    const ft = (free.body as { token: string }).token;
    assert.equal((await api(s, "GET", "/v1/tts/jobs", { key: ft })).status, 200);
  } finally {
    await s.close();
  }
});
