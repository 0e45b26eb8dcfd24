/**
 * Phone-call admin API through the real edge: SIP credentials (HA1 hashes only, never the password) and numbers,
 * admin scope, tenant isolation, conflicts and bad input; `POST /v1/sessions/{id}/say` routed to the owning
 * origin's session service.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { sql } from "drizzle-orm";
import { api, startStack } from "./harness.ts";
import type { SayOptions } from "../origin/pipeline/types.ts";
import { claimSession, markActive } from "../db/sessions.ts";

const md5 = (s: string) => createHash("md5").update(s).digest("hex");
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

Deno.test("sip api: credentials are stored as MD5/SHA-256 HA1 only, admin scope, tenant-owned", async () => {
  const s = await startStack({ config: { SIP_REALM: "pbx.example" } });
  try {
    const k = s.adminKey;
    const c = await api(s, "POST", "/v1/sip/credentials", {
      key: k,
      json: { username: "alice", password: "s3cret-pass" },
    });
    assert.equal(c.status, 201, c.text);
    const cred = c.body as { id: string; username: string; realm: string };
    assert.equal(cred.realm, "pbx.example");
    assert.ok(!c.text.includes("s3cret"), "password echoed back");
    const rows = await s.database.query<Record<string, string>>(sql`select * from sip_credentials`);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].ha1_md5, md5("alice:pbx.example:s3cret-pass"));
    assert.equal(rows[0].ha1_sha256, sha256("alice:pbx.example:s3cret-pass"));
    assert.ok(!JSON.stringify(rows[0]).includes("s3cret"), "plaintext password stored");
    // duplicate username in the realm (any tenant) → 409; bad input → 400 with the field named
    const other = await s.key(["admin"]);
    const dup = await api(s, "POST", "/v1/sip/credentials", {
      key: other.key,
      json: { username: "alice", password: "another-pass" },
    });
    assert.equal(dup.status, 409, dup.text);
    const bad = await api(s, "POST", "/v1/sip/credentials", {
      key: k,
      json: { username: "a b", password: "x" },
    });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /username/);
    // another tenant sees none of it and cannot delete it; a non-admin key is refused
    const list2 = await api(s, "GET", "/v1/sip/credentials", { key: other.key });
    assert.deepEqual((list2.body as { credentials: unknown[] }).credentials, []);
    assert.equal((await api(s, "DELETE", `/v1/sip/credentials/${cred.id}`, { key: other.key })).status, 404);
    const user = await s.key(["sessions"], s.tenantId);
    assert.equal((await api(s, "GET", "/v1/sip/credentials", { key: user.key })).status, 403);
    const list = await api(s, "GET", "/v1/sip/credentials", { key: k });
    assert.deepEqual((list.body as { credentials: Array<{ id: string }> }).credentials.map((x) => x.id), [
      cred.id,
    ]);
    assert.equal((await api(s, "DELETE", `/v1/sip/credentials/${cred.id}`, { key: k })).status, 204);
    assert.equal((await api(s, "DELETE", `/v1/sip/credentials/${cred.id}`, { key: k })).status, 404);
  } finally {
    await s.close();
  }
});

Deno.test("sip api: numbers map an extension to session options, greeting and room", async () => {
  const s = await startStack();
  try {
    const k = s.adminKey;
    const rm = await api(s, "POST", "/v1/rooms", { key: k, json: { name: "lobby" } });
    assert.equal(rm.status, 201, rm.text);
    const roomId = (rm.body as { id: string }).id;
    // A room that is not the tenant's (or not a room id at all) is refused before anything is stored.
    const missing = await api(s, "POST", "/v1/numbers", {
      key: k,
      json: { number: "100", room: crypto.randomUUID() },
    });
    assert.equal(missing.status, 404, missing.text);
    assert.equal(
      (await api(s, "POST", "/v1/numbers", { key: k, json: { number: "100", room: "lobby" } })).status,
      400,
    );
    const clash = await api(s, "POST", "/v1/numbers", {
      key: k,
      json: { number: "100", room: roomId, options: { mode: "echo", room: crypto.randomUUID() } },
    });
    assert.equal(clash.status, 400, clash.text);
    const n = await api(s, "POST", "/v1/numbers", {
      key: k,
      json: { number: "100", options: { mode: "echo", voice: "en-us" }, greeting: "Hello.", room: roomId },
    });
    assert.equal(n.status, 201, n.text);
    const num = n.body as {
      id: string;
      options: { mode: string; barge_in: boolean; room: string };
      greeting: string;
      room: string;
    };
    assert.equal(num.options.mode, "echo");
    assert.equal(num.options.barge_in, true, "options are completed with their defaults");
    assert.equal(num.greeting, "Hello.");
    assert.equal(num.room, roomId);
    assert.equal(num.options.room, roomId, "the room is the calls' session option");
    const dflt = await api(s, "POST", "/v1/numbers", { key: k, json: { number: "101" } });
    assert.equal((dflt.body as { options: { mode: string } }).options.mode, "transcribe");
    assert.equal((await api(s, "POST", "/v1/numbers", { key: k, json: { number: "100" } })).status, 409);
    const bad = await api(s, "POST", "/v1/numbers", {
      key: k,
      json: { number: "100", options: { mode: "x" } },
    });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /options\.mode/);
    const list = await api(s, "GET", "/v1/numbers", { key: k });
    assert.deepEqual((list.body as { numbers: Array<{ number: string }> }).numbers.map((x) => x.number), [
      "100",
      "101",
    ]);
    const other = await s.key(["admin"]);
    assert.equal((await api(s, "DELETE", `/v1/numbers/${num.id}`, { key: other.key })).status, 404);
    assert.equal((await api(s, "DELETE", `/v1/numbers/${num.id}`, { key: k })).status, 204);
  } finally {
    await s.close();
  }
});

Deno.test("sip api: POST /v1/sessions/{id}/say reaches the owning origin's session; bad input and unknown ids", async () => {
  const said: Array<{ id: string; text: string; opts?: SayOptions }> = [];
  const s = await startStack({
    parts: () => ({
      sessions: {
        create: () => Promise.reject(new Error("not used")),
        get: () => null,
        say: (id: string, text: string, opts?: SayOptions) => {
          said.push({ id, text, opts });
          return Promise.resolve({ session_id: id, state: "active" as const, node_id: "n" });
        },
        end: () => Promise.resolve(null),
        load: 0,
        drain: () => {},
        close: () => Promise.resolve(),
      },
    }),
  });
  try {
    const origin = await s.startOrigin();
    const id = crypto.randomUUID();
    await claimSession(s.database, {
      id,
      tenantId: s.tenantId,
      nodeId: origin.nodeId,
      mode: "transcribe",
      options: {},
      kind: "sip",
    });
    await markActive(s.database, id);
    const r = await api(s, "POST", `/v1/sessions/${id}/say`, {
      key: s.adminKey,
      json: { text: "Hello caller.", voice: "en-us" },
    });
    assert.equal(r.status, 202, r.text);
    assert.deepEqual(said, [{ id, text: "Hello caller.", opts: { voice: "en-us" } }]);
    const ssml = await api(s, "POST", `/v1/sessions/${id}/say`, {
      key: s.adminKey,
      json: {
        text: "<speak>Hi <break time='200ms'/> there</speak>",
        voice: "flite:slt",
        speed: 1.5,
        ssml: true,
      },
    });
    assert.equal(ssml.status, 202, ssml.text);
    assert.deepEqual(said[1].opts, { voice: "flite:slt", speed: 1.5, ssml: true });
    // refused at the edge, before the origin hears of them
    const unknown = await api(s, "POST", `/v1/sessions/${id}/say`, {
      key: s.adminKey,
      json: { text: "x", voice: "klingon" },
    });
    assert.equal(unknown.status, 400, unknown.text);
    assert.match(unknown.text, /GET \/v1\/voices/);
    const bad = await api(s, "POST", `/v1/sessions/${id}/say`, {
      key: s.adminKey,
      json: { text: "<speak>Hi <script>x</script></speak>", ssml: true },
    });
    assert.equal(bad.status, 400, bad.text);
    assert.equal((bad.body as { error: { code: string } }).error.code, "invalid_ssml");
    assert.match(bad.text, /at character \d+/);
    for (
      const body of [
        '{"text":"x","speed":3}',
        '{"text":"x","__proto__":{"voice":"x"}}',
        '{"text":"x","extra":1}',
      ]
    ) {
      const res = await api(s, "POST", `/v1/sessions/${id}/say`, {
        key: s.adminKey,
        body,
        headers: { "content-type": "application/json" },
      });
      assert.equal(res.status, 400, body);
    }
    assert.equal(said.length, 2);
    assert.equal(
      (await api(s, "POST", `/v1/sessions/${id}/say`, { key: s.adminKey, json: { text: "" } })).status,
      400,
    );
    assert.equal(
      (await api(s, "POST", `/v1/sessions/${crypto.randomUUID()}/say`, {
        key: s.adminKey,
        json: { text: "x" },
      })).status,
      404,
    );
    const other = await s.key(["sessions"]);
    assert.equal(
      (await api(s, "POST", `/v1/sessions/${id}/say`, { key: other.key, json: { text: "x" } })).status,
      404,
    );
    const got = await api(s, "GET", `/v1/sessions/${id}`, { key: s.adminKey });
    assert.equal((got.body as { kind: string }).kind, "sip");
  } finally {
    await s.close();
  }
});
