/**
 * History API end to end through the edge (PGlite by default; real PostgreSQL with PARLEY_TEST_DATABASE_URL):
 * listing + keyset pagination under concurrent inserts, transcript pages and formats (WebVTT/SRT checked by
 * small parsers below), the event timeline and live follow hand-over, search, tenant isolation, erasure and
 * retention. Real responses are parsed with the zod schemas the OpenAPI document is generated from.
 */
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { sweepRetention } from "../db/history.ts";
import { appendEvent, markActive, markClosed } from "../db/sessions.ts";
import { docsRoutes } from "../edge/openapi.ts";
import { endAllFollowStreams, historyRoutes } from "../edge/routes/history.ts";
import { EventPage, SearchResult, SessionList, Transcript } from "../protocol/history.ts";
import type { ServerEventBody } from "../protocol/session_messages.ts";
import { api, sleep, type Stack, startStack } from "./harness.ts";

// ------------------------------------------------------------------------------------------------ fixtures

async function newSession(
  d: Database,
  tenantId: string,
  opts: { createdAt?: string; state?: string } = {},
): Promise<string> {
  const [row] = await d.query<{ id: string }>(sql`insert into sessions (tenant_id, state, created_at)
    values (${tenantId}::uuid, ${opts.state ?? "connecting"}, coalesce(${
    opts.createdAt ?? null
  }::timestamptz, now()))
    returning id`);
  return row.id;
}

function confirmed(segment: number, text: string, startMs: number, endMs: number): ServerEventBody {
  return {
    type: "transcript",
    segment_id: segment,
    status: "confirmed",
    alternatives: [{ text, score: 0.9 }],
    stable_text: text,
    unstable_text: "",
    start_ms: startMs,
    end_ms: endMs,
    latency_ms: 120,
  };
}

function partial(segment: number, text: string): ServerEventBody {
  return {
    type: "transcript",
    segment_id: segment,
    status: "partial",
    alternatives: [{ text, score: 0.5 }],
    stable_text: "",
    unstable_text: text,
    start_ms: 0,
    end_ms: 10,
    latency_ms: 50,
  };
}

/** A live session with the given confirmed texts (each preceded by a partial); closed unless keepOpen. */
async function sessionWithTranscript(
  d: Database,
  tenantId: string,
  texts: string[],
  opts: { keepOpen?: boolean } = {},
): Promise<string> {
  const id = await newSession(d, tenantId);
  await markActive(d, id);
  await appendEvent(d, id, { type: "state", state: "active", session_id: id });
  let t = 0;
  for (const [i, text] of texts.entries()) {
    await appendEvent(d, id, partial(i + 1, text.slice(0, 3)));
    await appendEvent(d, id, confirmed(i + 1, text, t, t + 800));
    t += 1000;
  }
  if (!opts.keepOpen) {
    await appendEvent(d, id, { type: "bye", reason: "client_hangup" });
    await markClosed(d, id, "client_hangup");
  }
  return id;
}

const err = (r: { body: unknown }) => (r.body as { error: { code: string } }).error.code;

// ------------------------------------------------------------------------------------------------ parsers

interface ParsedCue {
  id?: string;
  start: number;
  end: number;
  text: string[];
}

function vttTime(s: string): number {
  const m = /^(?:(\d{2,}):)?([0-5]\d):([0-5]\d)\.(\d{3})$/.exec(s);
  if (!m) throw new Error(`bad WebVTT timestamp ${JSON.stringify(s)}`);
  return ((Number(m[1] ?? 0) * 60 + Number(m[2])) * 60 + Number(m[3])) * 1000 + Number(m[4]);
}

/** WebVTT essentials (W3C WebVTT §4): signature, blank-line separated cues, timing syntax, payload rules. */
export function parseWebVtt(file: string): ParsedCue[] {
  assert.ok(!file.includes("\0"), "NUL in file");
  const lines = file.replace(/\r\n?/g, "\n").split("\n");
  assert.match(lines[0], /^WEBVTT([ \t].*)?$/, "signature line");
  assert.equal(lines[1] ?? "", "", "blank line after the header");
  const cues: ParsedCue[] = [];
  let i = 2;
  let lastStart = -1;
  while (i < lines.length) {
    if (lines[i] === "") {
      i++;
      continue;
    }
    let id: string | undefined;
    if (!lines[i].includes("-->")) id = lines[i++];
    const timing = /^(\S+)[ \t]+-->[ \t]+(\S+)([ \t].*)?$/.exec(lines[i++] ?? "");
    if (!timing) throw new Error(`cue without timing line near line ${i}`);
    const start = vttTime(timing[1]);
    const end = vttTime(timing[2]);
    assert.ok(end > start, `cue end ${end} must be after start ${start}`);
    assert.ok(start >= lastStart, "cue start times must not decrease");
    lastStart = start;
    const text: string[] = [];
    while (i < lines.length && lines[i] !== "") {
      assert.ok(!lines[i].includes("-->"), "payload must not contain -->");
      // text must be escaped: no raw '<', every '&' starts an entity
      assert.ok(!lines[i].includes("<"), `unescaped < in ${lines[i]}`);
      assert.ok(!/&(?!(amp|lt|gt|nbsp|lrm|rlm);)/.test(lines[i]), `unescaped & in ${lines[i]}`);
      text.push(lines[i++]);
    }
    assert.ok(text.length > 0, "cue without text");
    cues.push({ id, start, end, text });
  }
  return cues;
}

function srtTime(s: string): number {
  const m = /^(\d{2,}):([0-5]\d):([0-5]\d),(\d{3})$/.exec(s);
  if (!m) throw new Error(`bad SRT timestamp ${JSON.stringify(s)}`);
  return ((Number(m[1]) * 60 + Number(m[2])) * 60 + Number(m[3])) * 1000 + Number(m[4]);
}

/** SubRip: blocks of index (1, 2, …), `HH:MM:SS,mmm --> HH:MM:SS,mmm`, ≥ 1 text line; blank line between. */
export function parseSrt(file: string): ParsedCue[] {
  const blocks = file.replace(/\r\n?/g, "\n").replace(/\n+$/, "").split(/\n\n/);
  if (blocks.length === 1 && blocks[0] === "") return [];
  return blocks.map((b, k) => {
    const lines = b.split("\n");
    assert.equal(lines[0], String(k + 1), "sequential index");
    const m = /^(\S+) --> (\S+)$/.exec(lines[1] ?? "");
    if (!m) throw new Error(`bad SRT timing line ${JSON.stringify(lines[1])}`);
    const start = srtTime(m[1]);
    const end = srtTime(m[2]);
    assert.ok(end > start);
    const text = lines.slice(2);
    assert.ok(text.length > 0 && text.every((l) => l.trim() !== ""), "cue text");
    return { id: lines[0], start, end, text };
  });
}

// ------------------------------------------------------------------------------------------------ SSE client

interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

async function openSse(
  s: Stack,
  path: string,
  key: string,
  headers: Record<string, string> = {},
): Promise<
  { res: Response; next(timeoutMs?: number): Promise<SseEvent | undefined>; close(): Promise<void> }
> {
  const res = await fetch(s.url + path, { headers: { authorization: `Bearer ${key}`, ...headers } });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const queue: SseEvent[] = [];
  const parse = () => {
    let k: number;
    while ((k = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, k);
      buf = buf.slice(k + 2);
      const e: SseEvent = { event: "message", data: "" };
      let hasData = false;
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const c = line.indexOf(":");
        const field = c < 0 ? line : line.slice(0, c);
        const value = c < 0 ? "" : line.slice(c + 1).replace(/^ /, "");
        if (field === "id") e.id = value;
        else if (field === "event") e.event = value;
        else if (field === "data") {
          e.data += (hasData ? "\n" : "") + value;
          hasData = true;
        }
      }
      if (hasData) queue.push(e);
    }
  };
  return {
    res,
    async next(timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (queue.length === 0) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error("SSE: timed out waiting for an event");
        let timer: ReturnType<typeof setTimeout> | undefined;
        const r = await Promise.race([
          reader.read(),
          new Promise<"timeout">((ok) => timer = setTimeout(() => ok("timeout"), left)),
        ]);
        clearTimeout(timer);
        if (r === "timeout") continue;
        if (r.done) return undefined;
        buf += r.value;
        parse();
      }
      return queue.shift();
    },
    async close() {
      await reader.cancel().catch(() => {});
    },
  };
}

/** Collect a follow stream until `end` (or the stream closes). */
async function collectUntilEnd(
  sse: Awaited<ReturnType<typeof openSse>>,
  timeoutMs = 15000,
): Promise<SseEvent[]> {
  const out: SseEvent[] = [];
  while (true) {
    const e = await sse.next(timeoutMs);
    if (!e) return out;
    out.push(e);
    if (e.event === "end") return out;
  }
}

// ------------------------------------------------------------------------------------------------ tests

Deno.test("history: list sessions — filters, keyset pagination, validation, isolation", async (t) => {
  const s = await startStack({ routes: [historyRoutes, docsRoutes] });
  try {
    const a = await s.key(["transcripts:read"]);
    const b = await s.key(["transcripts:read"]);
    const noScope = await s.key(["sessions"], a.tenantId);
    const base = Date.parse("2026-01-01T00:00:00Z");
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      // pairs share a created_at: the id breaks the tie
      const at = new Date(base + Math.floor(i / 2) * 60_000).toISOString();
      ids.push(
        await newSession(s.database, a.tenantId, { createdAt: at, state: i % 3 === 0 ? "closed" : "active" }),
      );
    }
    await newSession(s.database, b.tenantId, { createdAt: new Date(base).toISOString() });

    await t.step(
      "pages cover every row once, newest first, (created_at, id) strictly decreasing",
      async () => {
        const seen: Array<{ id: string; created_at: string }> = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const r = await api(s, "GET", `/v1/sessions?limit=7${cursor ? `&cursor=${cursor}` : ""}`, {
            key: a.key,
          });
          assert.equal(r.status, 200, r.text);
          const body = SessionList.parse(r.body);
          seen.push(...body.sessions);
          cursor = body.next_cursor;
          pages++;
        } while (cursor);
        assert.equal(pages, 5);
        assert.deepEqual(seen.map((x) => x.id).sort(), [...ids].sort());
        for (let i = 1; i < seen.length; i++) {
          const p = seen[i - 1], c = seen[i];
          assert.ok(p.created_at > c.created_at || (p.created_at === c.created_at && p.id > c.id), "order");
        }
        assert.match(seen[0].created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      },
    );

    await t.step("state and time filters", async () => {
      const r = await api(s, "GET", "/v1/sessions?state=closed&limit=200", { key: a.key });
      const body = SessionList.parse(r.body);
      assert.equal(body.sessions.length, 10);
      assert.ok(body.sessions.every((x) => x.state === "closed"));
      assert.equal(body.next_cursor, null);
      const two = await api(s, "GET", "/v1/sessions?state=closed,active&limit=200", { key: a.key });
      assert.equal(SessionList.parse(two.body).sessions.length, 30);
      const from = new Date(base + 5 * 60_000).toISOString();
      const to = new Date(base + 10 * 60_000).toISOString();
      const w = await api(s, "GET", `/v1/sessions?from=${from}&to=${to}&limit=200`, { key: a.key });
      assert.equal(SessionList.parse(w.body).sessions.length, 10); // minutes 5..9, two each
    });

    await t.step("bad parameters are 400 validation_failed", async () => {
      for (
        const q of [
          "limit=0",
          "limit=201",
          "limit=abc",
          "state=open",
          "from=yesterday",
          "cursor=garbage",
          `cursor=${btoa(JSON.stringify(["2026-01-01T00:00:00.000000Z", "not-a-uuid"]))}`,
          `cursor=${btoa("[1,2]")}`,
          "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        ]
      ) {
        const r = await api(s, "GET", `/v1/sessions?${q}`, { key: a.key });
        assert.equal(r.status, 400, `${q}: ${r.text}`);
        assert.equal(err(r), "validation_failed");
      }
    });

    await t.step("tenant isolation and scope", async () => {
      const rb = SessionList.parse((await api(s, "GET", "/v1/sessions", { key: b.key })).body);
      assert.equal(rb.sessions.length, 1);
      assert.ok(!ids.includes(rb.sessions[0].id));
      assert.equal((await api(s, "GET", "/v1/sessions", { key: noScope.key })).status, 403);
      assert.equal((await api(s, "GET", "/v1/sessions")).status, 401);
      // a browser token bound to one session lists only that session
      const tok = await api(s, "POST", "/v1/tokens", {
        key: a.key,
        json: { scopes: ["transcripts:read"], session_id: ids[4] },
      });
      const token = (tok.body as { token: string }).token;
      const only = SessionList.parse((await api(s, "GET", "/v1/sessions", { key: token })).body);
      assert.deepEqual(only.sessions.map((x) => x.id), [ids[4]]);
    });
  } finally {
    await s.close();
  }
});

Deno.test("history: word timings and confidence are stored, returned and exported as word-level cues", async (t) => {
  const s = await startStack({ routes: [historyRoutes] });
  try {
    const a = await s.key(["transcripts:read"]);
    const id = await newSession(s.database, a.tenantId);
    await markActive(s.database, id);
    const words = [
      { text: "turn", start_ms: 1200, end_ms: 1420, confidence: 0.97 },
      { text: "on", start_ms: 1440, end_ms: 1560, confidence: null },
      { text: "lights", start_ms: 1600, end_ms: 2010, confidence: 0.5 },
    ];
    const withWords = {
      ...confirmed(1, "turn on lights", 1100, 2100),
      words,
      confidence: 0.81,
    } as ServerEventBody;
    await appendEvent(s.database, id, withWords);
    await appendEvent(s.database, id, confirmed(2, "no timings here", 3000, 3900));

    await t.step("JSON (database-rendered and event-log pages) carries words and confidence", async () => {
      const p = Transcript.parse((await api(s, "GET", `/v1/sessions/${id}/transcript`, { key: a.key })).body);
      assert.deepEqual(p.segments[0].words, words);
      assert.ok(Math.abs(p.segments[0].confidence! - 0.81) < 1e-6);
      assert.equal(p.segments[1].words, null);
      assert.equal(p.segments[1].confidence, null);
      const e = Transcript.parse(
        (await api(s, "GET", `/v1/sessions/${id}/transcript?include_partials=1`, { key: a.key })).body,
      );
      assert.deepEqual(e.segments[0].words, words);
    });

    await t.step("granularity=word: one cue per word, segments without words stay one cue", async () => {
      const r = await api(s, "GET", `/v1/sessions/${id}/transcript?format=vtt&granularity=word`, {
        key: a.key,
      });
      assert.equal(r.status, 200, r.text);
      const cues = parseWebVtt(r.text);
      assert.deepEqual(cues.map((c) => [c.start, c.end, c.text.join(" ")]), [
        [1200, 1420, "turn"],
        [1440, 1560, "on"],
        [1600, 2010, "lights"],
        [3000, 3900, "no timings here"],
      ]);
      const srt = parseSrt(
        (await api(s, "GET", `/v1/sessions/${id}/transcript?format=srt&granularity=word`, {
          key: a.key,
        })).text,
      );
      assert.equal(srt.length, 4);
      assert.equal(srt[2].text.join(" "), "lights");
      const seg = parseWebVtt(
        (await api(s, "GET", `/v1/sessions/${id}/transcript?format=vtt`, { key: a.key })).text,
      );
      assert.equal(seg.length, 2);
      assert.equal(
        (await api(s, "GET", `/v1/sessions/${id}/transcript?format=vtt&granularity=letter`, { key: a.key }))
          .status,
        400,
      );
    });
  } finally {
    await s.close();
  }
});

Deno.test("history: pagination under concurrent inserts — no row skipped or repeated", async () => {
  const s = await startStack({ routes: [historyRoutes] });
  try {
    const a = await s.key(["transcripts:read"]);
    const base = Date.parse("2026-03-01T00:00:00Z");
    const initial = new Set<string>();
    for (let i = 0; i < 60; i++) {
      initial.add(
        await newSession(s.database, a.tenantId, { createdAt: new Date(base + i * 1000).toISOString() }),
      );
    }
    // Writer: while the reader pages, insert rows that sort before, after and exactly at existing positions.
    let stop = false;
    const inserted: string[] = [];
    const writer = (async () => {
      let k = 0;
      while (!stop) {
        const kind = k++ % 3;
        const at = kind === 0
          ? new Date().toISOString() // newest
          : kind === 1
          ? new Date(base + Math.floor(Math.random() * 60) * 1000).toISOString() // ties an existing created_at
          : new Date(base + Math.random() * 60_000).toISOString(); // in between
        inserted.push(await newSession(s.database, a.tenantId, { createdAt: at }));
        await sleep(1);
      }
    })();
    const pages: string[][] = [];
    let cursor: string | null = null;
    try {
      do {
        const r = await api(s, "GET", `/v1/sessions?limit=5${cursor ? `&cursor=${cursor}` : ""}`, {
          key: a.key,
        });
        assert.equal(r.status, 200, r.text);
        const body = SessionList.parse(r.body);
        pages.push(body.sessions.map((x) => x.id));
        cursor = body.next_cursor;
        await sleep(3); // let the writer interleave
      } while (cursor);
    } finally {
      stop = true;
      await writer;
    }
    const all = pages.flat();
    assert.ok(inserted.length >= 10, `writer inserted only ${inserted.length}`);
    assert.equal(new Set(all).size, all.length, "a row was repeated");
    for (const id of initial) assert.ok(all.includes(id), "a row that existed before paging was skipped");

    // Control: the same interleaving with OFFSET pagination does repeat rows (the test can see the failure).
    const offsetSeen: string[] = [];
    for (let off = 0; off < 40; off += 5) {
      const rows = await s.database.query<{ id: string }>(
        sql`select id from sessions where tenant_id = ${a.tenantId}
        order by created_at desc, id desc limit 5 offset ${off}`,
      );
      offsetSeen.push(...rows.map((r) => r.id));
      await newSession(s.database, a.tenantId); // newest: shifts every later offset by one
    }
    assert.ok(new Set(offsetSeen).size < offsetSeen.length, "control: offset paging should repeat rows");
  } finally {
    await s.close();
  }
});

Deno.test("history: transcript pages and formats (JSON, text, WebVTT, SRT)", async (t) => {
  const s = await startStack({ routes: [historyRoutes] });
  try {
    const a = await s.key(["transcripts:read"]);
    const texts = [
      "Hello there",
      "Tags <b>bold</b> & ampersands",
      "an arrow --> inside",
      "line\nbreak  and   spaces",
      "日本語のテキスト 🎉",
      "   ",
    ];
    const id = await sessionWithTranscript(s.database, a.tenantId, texts);
    // one more segment with a long session time and end <= start (clamped to a valid cue)
    await s.database.query(sql`update transcript_segments set start_ms = 3725000, end_ms = 3725000
      where session_id = ${id}::uuid and segment_id = 5`);

    await t.step("JSON pages by after_seq with next_after_seq", async () => {
      const r1 = await api(s, "GET", `/v1/sessions/${id}/transcript?limit=4`, { key: a.key });
      assert.equal(r1.status, 200, r1.text);
      const p1 = Transcript.parse(r1.body);
      assert.equal(p1.segments.length, 4);
      assert.deepEqual(p1.segments.map((x) => x.text).slice(0, 2), texts.slice(0, 2));
      assert.ok(p1.segments.every((x) => x.status === "confirmed"));
      assert.equal(p1.state, "closed");
      assert.notEqual(p1.next_after_seq, null);
      const r2 = await api(s, "GET", `/v1/sessions/${id}/transcript?limit=4&after_seq=${p1.next_after_seq}`, {
        key: a.key,
      });
      const p2 = Transcript.parse(r2.body);
      assert.equal(p2.segments.length, 2);
      assert.equal(p2.next_after_seq, null);
      const seqs = [...p1.segments, ...p2.segments].map((x) => x.seq);
      assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y));
      assert.equal(r1.headers.get("content-type"), "application/json");
    });

    await t.step("include_partials returns partial and confirmed results from the event log", async () => {
      const r = await api(s, "GET", `/v1/sessions/${id}/transcript?include_partials=true&limit=100`, {
        key: a.key,
      });
      const p = Transcript.parse(r.body);
      assert.equal(p.segments.length, 12);
      assert.deepEqual(p.segments.slice(0, 2).map((x) => [x.status, x.text]), [["partial", "Hel"], [
        "confirmed",
        "Hello there",
      ]]);
      assert.equal(
        (await api(s, "GET", `/v1/sessions/${id}/transcript?include_partials=1&format=vtt`, { key: a.key }))
          .status,
        400,
      );
    });

    await t.step("WebVTT by ?format and by Accept parses and escapes", async () => {
      const r = await api(s, "GET", `/v1/sessions/${id}/transcript?format=vtt`, { key: a.key });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("content-type"), "text/vtt; charset=utf-8");
      const cues = parseWebVtt(r.text);
      assert.equal(cues.length, 5); // the whitespace-only segment has no cue
      assert.deepEqual(cues[1].text, ["Tags &lt;b&gt;bold&lt;/b&gt; &amp; ampersands"]);
      assert.deepEqual(cues[3].text, ["line break and spaces"]);
      assert.equal(cues[4].start, 3725000);
      assert.ok(r.text.includes("01:02:05.000 --> 01:02:05.001"));
      const byAccept = await api(s, "GET", `/v1/sessions/${id}/transcript`, {
        key: a.key,
        headers: { accept: "text/vtt, application/json;q=0.5" },
      });
      assert.equal(byAccept.text, r.text);
      assert.equal(byAccept.headers.get("vary"), "Accept");
    });

    await t.step("SRT parses: sequential indexes, comma timestamps", async () => {
      const r = await api(s, "GET", `/v1/sessions/${id}/transcript`, {
        key: a.key,
        headers: { accept: "application/x-subrip" },
      });
      assert.equal(r.headers.get("content-type"), "application/x-subrip; charset=utf-8");
      const cues = parseSrt(r.text);
      assert.equal(cues.length, 5);
      assert.equal(cues[0].start, 0);
      assert.equal(cues[0].end, 800);
      assert.deepEqual(cues[2].text, ["an arrow -> inside"]);
      assert.deepEqual(cues[4].text, ["日本語のテキスト 🎉"]);
    });

    await t.step("plain text and export pagination header", async () => {
      const r = await api(s, "GET", `/v1/sessions/${id}/transcript`, {
        key: a.key,
        headers: { accept: "text/plain" },
      });
      assert.equal(
        r.text,
        "Hello there\nTags <b>bold</b> & ampersands\nan arrow --> inside\n" +
          "line break and spaces\n日本語のテキスト 🎉\n",
      );
      const cut = await api(s, "GET", `/v1/sessions/${id}/transcript?format=srt&limit=2`, { key: a.key });
      assert.equal(parseSrt(cut.text).length, 2);
      const next = cut.headers.get("parley-next-after-seq");
      assert.ok(next);
      const rest = await api(s, "GET", `/v1/sessions/${id}/transcript?format=srt&after_seq=${next}`, {
        key: a.key,
      });
      assert.equal(parseSrt(rest.text).length, 3);
      assert.equal(rest.headers.get("parley-next-after-seq"), null);
    });

    await t.step("empty transcript is a valid empty file", async () => {
      const empty = await newSession(s.database, a.tenantId);
      const vtt = await api(s, "GET", `/v1/sessions/${empty}/transcript?format=vtt`, { key: a.key });
      assert.deepEqual(parseWebVtt(vtt.text), []);
      const srt = await api(s, "GET", `/v1/sessions/${empty}/transcript?format=srt`, { key: a.key });
      assert.deepEqual(parseSrt(srt.text), []);
    });

    await t.step("validation and isolation", async () => {
      const other = await s.key(["transcripts:read"]);
      for (const path of [`/v1/sessions/${id}/transcript`, `/v1/sessions/${id}/events`]) {
        const r = await api(s, "GET", path, { key: other.key });
        assert.equal(r.status, 404);
        assert.equal(err(r), "not_found");
      }
      assert.equal((await api(s, "GET", `/v1/sessions/not-a-uuid/transcript`, { key: a.key })).status, 404);
      for (const q of ["limit=0", "limit=1001", "after_seq=-1", "format=docx", "include_partials=maybe"]) {
        const r = await api(s, "GET", `/v1/sessions/${id}/transcript?${q}`, { key: a.key });
        assert.equal(r.status, 400, q);
      }
      const bound = await api(s, "POST", "/v1/tokens", {
        key: a.key,
        json: { scopes: ["transcripts:read"], session_id: crypto.randomUUID() },
      });
      const r = await api(s, "GET", `/v1/sessions/${id}/transcript`, {
        key: (bound.body as { token: string }).token,
      });
      assert.equal(r.status, 403);
    });
  } finally {
    await s.close();
  }
});

Deno.test("history: event timeline pages and live follow hand-over without gap or duplicate", async (t) => {
  const s = await startStack({ routes: [historyRoutes] });
  try {
    const a = await s.key(["transcripts:read"]);

    await t.step("JSON pages of events as sent", async () => {
      const id = await sessionWithTranscript(s.database, a.tenantId, ["one", "two", "three"]);
      const r = await api(s, "GET", `/v1/sessions/${id}/events?limit=5`, { key: a.key });
      const p = EventPage.parse(r.body);
      assert.deepEqual(p.events.map((e) => e.seq), [1, 2, 3, 4, 5]);
      assert.equal(p.events[0].type, "state");
      assert.equal(p.events[2].event.status, "confirmed");
      assert.equal(p.events[2].event.seq, 3);
      assert.equal(p.next_after_seq, 5);
      assert.equal(p.last_seq, 8);
      const rest = EventPage.parse(
        (await api(s, "GET", `/v1/sessions/${id}/events?after_seq=5`, { key: a.key })).body,
      );
      assert.deepEqual(rest.events.map((e) => e.type), ["transcript", "transcript", "bye"]);
      assert.equal(rest.next_after_seq, null);
    });

    await t.step("follow on an ended session replays and ends", async () => {
      const id = await sessionWithTranscript(s.database, a.tenantId, ["a", "b"]);
      const sse = await openSse(s, `/v1/sessions/${id}/events?follow=1&after_seq=2`, a.key);
      assert.equal(sse.res.headers.get("content-type"), "text/event-stream; charset=utf-8");
      const got = await collectUntilEnd(sse);
      await sse.close();
      assert.deepEqual(got.map((e) => e.id ?? e.event), ["3", "4", "5", "6", "end"]);
      assert.equal(JSON.parse(got[0].data).status, "confirmed");
      assert.deepEqual(JSON.parse(got[4].data), { reason: "closed", last_seq: 6 });
    });

    await t.step("hand-over: followers joining while events are appended see 1..N exactly once", async () => {
      const id = await sessionWithTranscript(s.database, a.tenantId, [], { keepOpen: true });
      const N = 120;
      const appended: number[] = [];
      const writer = (async () => {
        for (let i = 0; i < N; i++) {
          appended.push(
            await appendEvent(s.database, id, confirmed(i + 1, `word ${i}`, i * 100, i * 100 + 90)),
          );
          if (i % 10 === 0) await sleep(2);
        }
        await appendEvent(s.database, id, { type: "bye", reason: "client_hangup" });
        await markClosed(s.database, id, "client_hangup");
      })();
      // followers join at different moments, some mid-backlog, one with Last-Event-ID
      const followers: Promise<SseEvent[]>[] = [];
      for (let k = 0; k < 4; k++) {
        await sleep(k === 0 ? 0 : 15);
        const after = k === 2 ? 5 : 0;
        const headers: Record<string, string> = k === 3 ? { "last-event-id": "10" } : {};
        followers.push((async () => {
          const sse = await openSse(
            s,
            `/v1/sessions/${id}/events?follow=1&after_seq=${after}`,
            a.key,
            headers,
          );
          try {
            return await collectUntilEnd(sse, 20000);
          } finally {
            await sse.close();
          }
        })());
      }
      await writer;
      const results = await Promise.all(followers);
      const lastSeq = N + 2; // state + N transcripts + bye
      results.forEach((events, k) => {
        const start = k === 2 ? 5 : k === 3 ? 10 : 0;
        const seqs = events.filter((e) => e.event !== "end").map((e) => Number(e.id));
        const want = Array.from({ length: lastSeq - start }, (_, i) => start + i + 1);
        assert.deepEqual(seqs, want, `follower ${k}`);
        assert.equal(events.at(-1)!.event, "end");
        for (const e of events.slice(0, -1)) assert.equal(JSON.parse(e.data).seq, Number(e.id));
      });
    });

    await t.step("a live follower gets new events promptly and ends when the session closes", async () => {
      const id = await sessionWithTranscript(s.database, a.tenantId, ["first"], { keepOpen: true });
      const sse = await openSse(s, `/v1/sessions/${id}/events?follow=1`, a.key);
      try {
        const backlog = [await sse.next(), await sse.next(), await sse.next()];
        assert.deepEqual(backlog.map((e) => e!.id), ["1", "2", "3"]);
        const t0 = performance.now();
        await appendEvent(s.database, id, confirmed(9, "live one", 5000, 5600));
        const live = await sse.next(3000);
        assert.equal(live!.id, "4");
        assert.ok(performance.now() - t0 < 2000, "live event took too long");
        await markClosed(s.database, id, "admin");
        const end = await sse.next(3000);
        assert.equal(end!.event, "end");
        assert.equal(await sse.next(3000), undefined, "stream closes after end");
      } finally {
        await sse.close();
      }
    });

    await t.step("shutdown ends open follow streams (clients reconnect with Last-Event-ID)", async () => {
      const id = await sessionWithTranscript(s.database, a.tenantId, ["x"], { keepOpen: true });
      const sse = await openSse(s, `/v1/sessions/${id}/events?follow=1`, a.key);
      try {
        for (let i = 0; i < 3; i++) await sse.next();
        endAllFollowStreams();
        assert.equal(await sse.next(3000), undefined, "stream closed");
        // resuming where it stopped gets only what is new
        await appendEvent(s.database, id, confirmed(5, "after restart", 9000, 9500));
        await markClosed(s.database, id, "admin");
        const again = await openSse(s, `/v1/sessions/${id}/events?follow=1`, a.key, { "last-event-id": "3" });
        const got = await collectUntilEnd(again);
        await again.close();
        assert.deepEqual(got.map((e) => e.id ?? e.event), ["4", "end"]);
      } finally {
        await sse.close();
      }
    });

    await t.step(
      "a long replay (several reads, client slower than the reads) arrives whole and in order",
      async () => {
        const id = await sessionWithTranscript(s.database, a.tenantId, [], { keepOpen: true });
        await s.database.query(sql`insert into session_events (session_id, seq, type, payload)
        select ${id}::uuid, g, 'pong', jsonb_build_object('type', 'pong', 'seq', g, 'id', g, 'server_time_ms', 0)
        from generate_series(2, 1301) g`);
        await s.database.query(sql`update sessions set last_seq = 1301 where id = ${id}::uuid`);
        await markClosed(s.database, id, "client_hangup");
        const sse = await openSse(s, `/v1/sessions/${id}/events?follow=1`, a.key);
        try {
          await sleep(300); // let the server run ahead until backpressure stops it
          const got = await collectUntilEnd(sse);
          const seqs = got.filter((e) => e.event !== "end").map((e) => Number(e.id));
          assert.deepEqual(seqs, Array.from({ length: 1301 }, (_, i) => i + 1));
          assert.equal(got.at(-1)!.event, "end");
        } finally {
          await sse.close();
        }
      },
    );

    await t.step("bad Last-Event-ID → 400", async () => {
      const id = await sessionWithTranscript(s.database, a.tenantId, []);
      const r = await api(s, "GET", `/v1/sessions/${id}/events?follow=1`, {
        key: a.key,
        headers: { "last-event-id": "x1" },
      });
      assert.equal(r.status, 400);
    });
  } finally {
    await s.close();
  }
});

Deno.test("history: search — ranking, snippets, links, time range, isolation, odd queries", async (t) => {
  const s = await startStack({ routes: [historyRoutes] });
  try {
    const a = await s.key(["transcripts:read"]);
    const b = await s.key(["transcripts:read"]);
    const s1 = await sessionWithTranscript(s.database, a.tenantId, [
      "the apple pie was delicious",
      "apple apple apple everywhere apples",
      "nothing to see here",
      "<script>alert('x')</script> about apple",
    ]);
    const s2 = await sessionWithTranscript(s.database, a.tenantId, [
      "a banana and an apple",
      "weather is nice",
    ]);
    const sb = await sessionWithTranscript(s.database, b.tenantId, ["apple secrets of tenant b"]);
    const search = async (q: string, key = a.key, extra = "") =>
      await api(s, "GET", `/v1/transcripts/search?q=${encodeURIComponent(q)}${extra}`, { key });

    await t.step("ranked best first with highlighted, escaped snippets and links", async () => {
      const r = await search("apple");
      assert.equal(r.status, 200, r.text);
      const body = SearchResult.parse(r.body);
      assert.equal(body.results.length, 4);
      assert.equal(body.results[0].session_id, s1);
      assert.match(body.results[0].snippet, /<mark>apple<\/mark> <mark>apple<\/mark>/);
      for (let i = 1; i < body.results.length; i++) {
        assert.ok(body.results[i - 1].rank >= body.results[i].rank);
      }
      // markup in a transcript never reaches the snippet as markup (ts_headline drops tags; the rest is escaped)
      const xss = body.results.find((x) => x.snippet.includes("alert"))!;
      assert.equal(xss.snippet, "alert(&#39;x&#39;) about <mark>apple</mark>");
      for (const r of body.results) assert.equal(r.snippet.replace(/<\/?mark>/g, "").includes("<"), false);
      const hit = body.results[0];
      assert.equal(hit.links.session, `/v1/sessions/${s1}`);
      const linked = Transcript.parse((await api(s, "GET", hit.links.transcript, { key: a.key })).body);
      assert.equal(linked.segments[0].seq, hit.seq);
      assert.ok(!body.results.some((x) => x.session_id === sb), "another tenant's segment leaked");
    });

    await t.step("web search syntax: phrase, or, negation, stemming", async () => {
      const phrase = SearchResult.parse((await search('"apple pie"')).body);
      assert.deepEqual(phrase.results.map((x) => x.session_id), [s1]);
      assert.equal(phrase.results.length, 1);
      const or = SearchResult.parse((await search("banana or weather")).body);
      assert.equal(or.results.length, 2);
      const not = SearchResult.parse((await search("apple -banana")).body);
      assert.ok(not.results.every((x) => x.session_id === s1));
      const stem = SearchResult.parse((await search("apples")).body);
      assert.equal(stem.results.length, 4);
      const both = SearchResult.parse((await search("banana apple")).body);
      assert.deepEqual(both.results.map((x) => x.session_id), [s2]);
    });

    await t.step("time range and limit", async () => {
      const future = SearchResult.parse((await search("apple", a.key, "&from=2999-01-01T00:00:00Z")).body);
      assert.equal(future.results.length, 0);
      const past = SearchResult.parse(
        (await search("apple", a.key, "&to=2999-01-01T00:00:00Z&limit=2")).body,
      );
      assert.equal(past.results.length, 2);
    });

    await t.step("odd queries never 500: 200 (maybe empty) or 400", async () => {
      const odd = [
        "'",
        '"',
        '"unterminated',
        "&|!():*",
        "apple & | ! ( ) : * <->",
        "apple:*",
        "!apple",
        "((((",
        "-",
        "or",
        "the",
        "\\",
        "%",
        "'; drop table transcript_segments; --",
        "$1",
        "日本語",
        "🎉🎉",
        "\u0000apple",
        "a\u0000b",
        "\u202e\u200b",
        "é".normalize("NFD"),
        "x".repeat(1000),
        ("apple " + "! & | ( ) : * ").repeat(60).slice(0, 1000),
        "%ED%A0%80",
      ];
      for (const q of odd) {
        const r = await search(q);
        assert.equal(r.status, 200, `${JSON.stringify(q.slice(0, 40))}: ${r.status} ${r.text.slice(0, 200)}`);
        SearchResult.parse(r.body);
      }
      // stop words only: an empty query matches nothing (not every segment of the tenant)
      for (const q of ["the", "or", "&|!():*", "and the of"]) {
        assert.equal(SearchResult.parse((await search(q)).body).results.length, 0, q);
      }
      // the injection attempt did nothing
      const [{ n }] = await s.database.query<{ n: number }>(
        sql`select count(*)::int as n from transcript_segments`,
      );
      assert.equal(Number(n), 7);
      // malformed percent-encoding reaches the handler as-is and is just text
      const raw = await api(s, "GET", "/v1/transcripts/search?q=%E0%A4%A", { key: a.key });
      assert.equal(raw.status, 200);
      for (const q of ["", "   ", "x".repeat(10_000), "x".repeat(1001)]) {
        const r = await search(q);
        assert.equal(r.status, 400, `len ${q.length}`);
        assert.equal(err(r), "validation_failed");
      }
      assert.equal((await api(s, "GET", "/v1/transcripts/search", { key: a.key })).status, 400);
      assert.equal((await search("apple", a.key, "&limit=0")).status, 400);
      assert.equal((await search("apple", a.key, "&from=nope")).status, 400);
    });

    await t.step("tenant b finds only its own; a session-bound token only its session", async () => {
      const rb = SearchResult.parse((await search("apple", b.key)).body);
      assert.deepEqual(rb.results.map((x) => x.session_id), [sb]);
      const tok = await api(s, "POST", "/v1/tokens", {
        key: a.key,
        json: { scopes: ["transcripts:read"], session_id: s2 },
      });
      const bound = SearchResult.parse((await search("apple", (tok.body as { token: string }).token)).body);
      assert.deepEqual(bound.results.map((x) => x.session_id), [s2]);
    });
  } finally {
    await s.close();
  }
});

Deno.test("history: erasure on DELETE of an ended session; retention sweep", async (t) => {
  const s = await startStack({ routes: [historyRoutes] });
  try {
    const a = await s.key(["transcripts:read", "sessions"]);
    const counts = async (id: string) => {
      const [r] = await s.database.query<{ e: number; g: number }>(sql`select
        (select count(*)::int from session_events where session_id = ${id}::uuid) as e,
        (select count(*)::int from transcript_segments where session_id = ${id}::uuid) as g`);
      return [Number(r.e), Number(r.g)];
    };

    await t.step(
      "DELETE on a live session ends it and keeps its data; a retried DELETE keeps it; ?erase=true erases it",
      async () => {
        const keep = await sessionWithTranscript(s.database, a.tenantId, ["keep me"]);
        const live = await sessionWithTranscript(s.database, a.tenantId, ["secret words"], {
          keepOpen: true,
        });
        assert.deepEqual(await counts(live), [3, 1]);
        // no origin is alive for it: the edge marks it closed (origin_lost) and keeps the data
        assert.equal((await api(s, "DELETE", `/v1/sessions/${live}`, { key: a.key })).status, 204);
        assert.deepEqual(await counts(live), [3, 1]);
        // a retried plain DELETE never erases
        assert.equal((await api(s, "DELETE", `/v1/sessions/${live}`, { key: a.key })).status, 204);
        assert.deepEqual(await counts(live), [3, 1]);
        assert.equal(
          (await api(s, "DELETE", `/v1/sessions/${live}?erase=maybe`, { key: a.key })).status,
          400,
        );
        // explicit erasure: transcript and events go
        assert.equal((await api(s, "DELETE", `/v1/sessions/${live}?erase=true`, { key: a.key })).status, 204);
        assert.deepEqual(await counts(live), [0, 0]);
        assert.deepEqual(await counts(keep), [4, 1]);
        const tr = Transcript.parse(
          (await api(s, "GET", `/v1/sessions/${live}/transcript`, { key: a.key })).body,
        );
        assert.equal(tr.segments.length, 0);
        const found = SearchResult.parse(
          (await api(s, "GET", "/v1/transcripts/search?q=secret", { key: a.key })).body,
        );
        assert.equal(found.results.length, 0);
        // the row (metadata only) remains; DELETE stays idempotent
        assert.equal((await api(s, "GET", `/v1/sessions/${live}`, { key: a.key })).status, 200);
        assert.equal((await api(s, "DELETE", `/v1/sessions/${live}`, { key: a.key })).status, 204);
        // a follow on an erased, ended session ends at once
        const sse = await openSse(s, `/v1/sessions/${live}/events?follow=1`, a.key);
        const got = await collectUntilEnd(sse);
        await sse.close();
        assert.deepEqual(got.map((e) => e.event), ["end"]);
      },
    );

    await t.step("another tenant cannot erase", async () => {
      const victim = await sessionWithTranscript(s.database, a.tenantId, ["mine"]);
      const other = await s.key(["sessions"]);
      assert.equal(
        (await api(s, "DELETE", `/v1/sessions/${victim}?erase=true`, { key: other.key })).status,
        404,
      );
      assert.deepEqual(await counts(victim), [4, 1]);
    });

    await t.step(
      "retention deletes ended sessions older than N days with their events and segments",
      async () => {
        const old = await sessionWithTranscript(s.database, a.tenantId, ["old news"]);
        const oldLive = await sessionWithTranscript(s.database, a.tenantId, ["still talking"], {
          keepOpen: true,
        });
        await s.database.query(sql`update sessions set created_at = now() - interval '40 days'
        where id in (${old}::uuid, ${oldLive}::uuid)`);
        const recent = await sessionWithTranscript(s.database, a.tenantId, ["fresh"]);
        assert.equal(await sweepRetention(s.database, 0), 0, "0 keeps forever");
        assert.equal(await sweepRetention(s.database, 30, { batch: 1 }), 1);
        assert.deepEqual(await counts(old), [0, 0]);
        assert.equal((await api(s, "GET", `/v1/sessions/${old}`, { key: a.key })).status, 404);
        assert.deepEqual(await counts(oldLive), [3, 1], "live sessions are never swept");
        assert.deepEqual(await counts(recent), [4, 1]);
      },
    );
  } finally {
    await s.close();
  }
});
