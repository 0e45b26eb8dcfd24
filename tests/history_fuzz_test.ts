/**
 * Property: random query strings and headers on every history route never get a 5xx, and every error has the
 * one error shape. Query values come from arbitrary unicode strings (tsquery operators, quotes, percent signs,
 * NUL, lone surrogates…) and from values near the valid ones.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { sql } from "drizzle-orm";
import { appendEvent, markActive, markClosed } from "../db/sessions.ts";
import { historyRoutes } from "../edge/routes/history.ts";
import { api, startStack } from "./harness.ts";

Deno.test("property: random input to the history API never gets a 5xx", async () => {
  const s = await startStack({ routes: [historyRoutes] });
  try {
    const a = await s.key(["transcripts:read"]);
    const [row] = await s.database.query<{ id: string }>(
      sql`insert into sessions (tenant_id) values (${a.tenantId}::uuid) returning id`,
    );
    const sid = row.id;
    await markActive(s.database, sid);
    for (const text of ["hello world", "search & rescue: (the) 'quoted' \"text\"", "日本語 🎉 <b>x</b>"]) {
      await appendEvent(s.database, sid, {
        type: "transcript",
        segment_id: 1,
        status: "confirmed",
        alternatives: [{ text, score: 1 }],
        stable_text: text,
        unstable_text: "",
        start_ms: 0,
        end_ms: 500,
        latency_ms: 10,
      });
    }
    await markClosed(s.database, sid, "client_hangup");

    const value = fc.oneof(
      fc.string({ unit: "binary", maxLength: 40 }),
      fc.constantFrom(
        "",
        "0",
        "-1",
        "1",
        "500",
        "1001",
        "2147483648",
        "1e3",
        "NaN",
        "true",
        "vtt",
        "srt",
        "text",
      ),
      fc.constantFrom(
        "2026-01-01T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "closed,active",
        "&|!():*",
        "'\"\\",
        "%00",
      ),
      fc.string({ unit: "grapheme", maxLength: 12 }),
    );
    const params = fc.dictionary(
      fc.constantFrom(
        "q",
        "cursor",
        "after_seq",
        "limit",
        "format",
        "state",
        "from",
        "to",
        "follow",
        "include_partials",
      ),
      value,
      { maxKeys: 4 },
    );
    const path = fc.constantFrom(
      "/v1/sessions",
      `/v1/sessions/${sid}/transcript`,
      `/v1/sessions/${sid}/events`,
      "/v1/transcripts/search",
    );
    const accept = fc.constantFrom(
      undefined,
      "text/vtt",
      "application/x-subrip;q=0.9, */*;q=0.1",
      "bogus/*;q=x",
      "",
    );
    let n = 0;
    await fc.assert(
      fc.asyncProperty(path, params, accept, async (p, qs, acc) => {
        // follow streams stay open by design; the follow flag is checked with a closed session (ends at once)
        const query = new URLSearchParams(qs).toString();
        const r = await api(s, "GET", `${p}${query ? `?${query}` : ""}`, {
          key: a.key,
          headers: acc === undefined ? {} : { accept: acc },
        });
        n++;
        assert.ok(r.status < 500, `${p}?${query} → ${r.status} ${r.text.slice(0, 200)}`);
        if (r.status >= 400) {
          const body = r.body as { error?: { code?: string; message?: string } };
          assert.equal(typeof body?.error?.code, "string", r.text);
          assert.equal(typeof body?.error?.message, "string");
        }
      }),
      { numRuns: 150, seed: 7 },
    );
    assert.equal(n, 150);
  } finally {
    await s.close();
  }
});
