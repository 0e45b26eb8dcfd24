/**
 * SIP message parsing and serialization.
 *
 * Parsing uses JsSIP's parser (npm `jssip`, maintained by the mediasoup authors): its PEG grammar is strict
 * (a malformed Via/From/To/CSeq/Call-ID rejects the whole message), and it parses only — its transport is
 * WebSocket-only, which we do not use. The `sip` package (kirm) was evaluated and not used: it silently
 * drops malformed Via and CSeq headers instead of rejecting the message, so a response could be routed on
 * the wrong Via, and it has been unmaintained for years. On top of JsSIP this module enforces what a UAS
 * needs: size limit, mandatory headers, Content-Length against the bytes actually received, CSeq method
 * matching the request method, and never throws (JsSIP can throw on some malformed responses).
 *
 * Serialization is ours (a header list and a body): JsSIP's serializer needs a JsSIP UA instance.
 */
import Parser from "jssip/lib/Parser.js";
import type { ParseResult, SipMessage, SipRequest, SipResponse, SipVia } from "./sip_types.ts";

/** Largest message accepted on any transport (a UDP datagram cannot be larger). */
export const MAX_MESSAGE_BYTES = 65_535;

const COMPACT: Record<string, string> = {
  v: "via",
  f: "from",
  t: "to",
  i: "call-id",
  m: "contact",
  l: "content-length",
  c: "content-type",
  k: "supported",
  x: "session-expires",
  s: "subject",
  e: "content-encoding",
  o: "event",
  r: "refer-to",
  u: "allow-events",
};

/** Bytes are read as latin1 so that string offsets equal byte offsets (Content-Length counts bytes). */
export function bytesToText(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode(...bytes.subarray(i, Math.min(bytes.length, i + 8192)));
  }
  return s;
}

export function textToBytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 0xff;
  return out;
}

/** Splits the header section into [lower-case name, value] pairs, unfolding continuation lines. */
export function splitHeaders(head: string): Array<[string, string]> | null {
  const lines = head.split("\r\n");
  const out: Array<[string, string]> = [];
  for (const line of lines) {
    if (line === "") continue;
    if (line[0] === " " || line[0] === "\t") {
      if (out.length === 0) return null;
      out[out.length - 1][1] += " " + line.trim();
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) return null;
    const rawName = line.slice(0, colon).trim().toLowerCase();
    if (!/^[a-z0-9!%'`+~._*-]+$/.test(rawName)) return null;
    out.push([COMPACT[rawName] ?? rawName, line.slice(colon + 1).trim()]);
  }
  return out;
}

export function headerValue(headers: Array<[string, string]>, name: string): string | undefined {
  for (const [n, v] of headers) if (n === name) return v;
  return undefined;
}

export function headerValues(headers: Array<[string, string]>, name: string): string[] {
  return headers.filter(([n]) => n === name).map(([, v]) => v);
}

/** Headers a response must copy from its request (RFC 3261 8.2.6.2). */
function responseCopyHeaders(headers: Array<[string, string]>): Array<[string, string]> | null {
  const vias = headerValues(headers, "via");
  const from = headerValue(headers, "from");
  const to = headerValue(headers, "to");
  const callId = headerValue(headers, "call-id");
  const cseq = headerValue(headers, "cseq");
  if (vias.length === 0 || !from || !to || !callId || !cseq) return null;
  return [...vias.map((v): [string, string] => ["via", v]), ["from", from], ["to", to], ["call-id", callId], [
    "cseq",
    cseq,
  ]];
}

function fail(reason: string, head?: string, status = 400, statusReason = "Bad Request"): ParseResult {
  // A request whose mandatory headers are readable gets an error response; anything else is dropped silently.
  if (head !== undefined && !head.startsWith("SIP/")) {
    const firstLine = head.slice(0, head.indexOf("\r\n"));
    const method = firstLine.split(" ")[0];
    if (method !== "ACK") {
      const hs = splitHeaders(head.slice(firstLine.length + 2));
      const copy = hs ? responseCopyHeaders(hs) : null;
      if (copy && /^[A-Z]+ \S+ SIP\/2\.0$/.test(firstLine)) {
        return { ok: false, reason, reply: { status, reason: statusReason, headers: copy } };
      }
    }
  }
  return { ok: false, reason };
}

/** Parses one complete SIP message (one UDP datagram or one framed TCP message). Never throws. */
export function parseMessage(bytes: Uint8Array): ParseResult {
  try {
    return parseUnsafe(bytes);
  } catch (e) {
    return { ok: false, reason: `parser error: ${(e as Error).message}` };
  }
}

function parseUnsafe(bytes: Uint8Array): ParseResult {
  if (bytes.length === 0) return { ok: false, reason: "empty" };
  const text = bytesToText(bytes);
  const headEnd = text.indexOf("\r\n\r\n");
  if (headEnd < 0) return { ok: false, reason: "no end of headers" };
  const head = text.slice(0, headEnd);
  if (bytes.length > MAX_MESSAGE_BYTES) return fail("message too large", head, 513, "Message Too Large");
  if (!/^[\x20-\x7e\r\n\t\x80-\xff]*$/.test(head)) return fail("control characters in headers", head);
  const firstLineEnd = head.indexOf("\r\n");
  if (firstLineEnd < 0) return { ok: false, reason: "no headers" };
  const headers = splitHeaders(head.slice(firstLineEnd + 2));
  if (!headers) return fail("malformed header line", head);
  const bodyStart = headEnd + 4;
  const available = text.length - bodyStart;
  const clRaw = headerValue(headers, "content-length");
  let contentLength = available;
  if (clRaw !== undefined) {
    if (!/^\d{1,9}$/.test(clRaw)) return fail("bad Content-Length", head);
    contentLength = Number(clRaw);
    if (contentLength > available) return fail("body shorter than Content-Length", head);
  }
  for (const required of ["via", "from", "to", "call-id", "cseq"]) {
    if (!headerValue(headers, required)) return fail(`missing ${required}`, head);
  }
  if (headerValues(headers, "from").length > 1 || headerValues(headers, "to").length > 1) {
    return fail("duplicate From/To", head);
  }
  // JsSIP expects its own framing; hand it exactly one message.
  const one = text.slice(0, bodyStart + contentLength);
  // deno-lint-ignore no-explicit-any
  const m: any = Parser.parseMessage(one, {});
  if (!m) return fail("rejected by SIP grammar", head);
  const viaParsed = m.via;
  if (!viaParsed || !m.call_id || m.cseq === undefined || m.cseq === null || !m.from || !m.to) {
    return fail("unparseable mandatory header", head);
  }
  const cseqParts = String(headerValue(headers, "cseq")).split(/\s+/);
  const cseqMethod = cseqParts[1] ?? "";
  if (!Number.isSafeInteger(m.cseq) || m.cseq < 0 || m.cseq > 2 ** 31 - 1) {
    return fail("CSeq out of range", head);
  }
  const via: SipVia = {
    transport: String(viaParsed.transport ?? "").toLowerCase(),
    host: String(viaParsed.host),
    port: viaParsed.port ?? undefined,
    branch: viaParsed.branch ?? undefined,
    rport: viaParsed.rport,
    received: viaParsed.received ?? undefined,
  };
  const base = {
    headers,
    body: text.slice(bodyStart, bodyStart + contentLength),
    callId: String(m.call_id),
    cseq: m.cseq as number,
    cseqMethod,
    fromTag: m.from_tag ?? undefined,
    toTag: m.to_tag ?? undefined,
    via,
  };
  if (m.status_code !== undefined) {
    const res: SipResponse = {
      kind: "response",
      status: m.status_code,
      reason: m.reason_phrase ?? "",
      ...base,
    };
    return { ok: true, message: res };
  }
  if (cseqMethod !== m.method) return fail("CSeq method differs from request method", head);
  let maxForwards = 70;
  const mf = headerValue(headers, "max-forwards");
  if (mf !== undefined) {
    if (!/^\d{1,3}$/.test(mf)) return fail("bad Max-Forwards", head);
    maxForwards = Number(mf);
  }
  let contact: string | undefined;
  if (headerValue(headers, "contact")) {
    const c = m.parseHeader("contact");
    if (!c) return fail("bad Contact", head);
    contact = c.uri?.toString();
  }
  const req: SipRequest = {
    kind: "request",
    method: m.method,
    uri: m.ruri.toString(),
    uriUser: m.ruri.user ?? "",
    maxForwards,
    contact,
    ...base,
  };
  return { ok: true, message: req };
}

const REASONS: Record<number, string> = {
  100: "Trying",
  180: "Ringing",
  200: "OK",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  415: "Unsupported Media Type",
  420: "Bad Extension",
  422: "Session Interval Too Small",
  480: "Temporarily Unavailable",
  481: "Call/Transaction Does Not Exist",
  482: "Loop Detected",
  483: "Too Many Hops",
  486: "Busy Here",
  487: "Request Terminated",
  488: "Not Acceptable Here",
  491: "Request Pending",
  500: "Server Internal Error",
  503: "Service Unavailable",
  513: "Message Too Large",
};

export function reasonPhrase(status: number): string {
  return REASONS[status] ?? (status < 300 ? "OK" : "Error");
}

const CANONICAL: Record<string, string> = {
  "call-id": "Call-ID",
  "cseq": "CSeq",
  "www-authenticate": "WWW-Authenticate",
  "min-se": "Min-SE",
  "rseq": "RSeq",
};

function canonicalName(name: string): string {
  return CANONICAL[name] ?? name.replace(/(^|-)([a-z])/g, (_, d, c) => d + c.toUpperCase());
}

function serialize(firstLine: string, headers: Array<[string, string]>, body: string): Uint8Array {
  const lines = [firstLine];
  for (const [n, v] of headers) if (n !== "content-length") lines.push(`${canonicalName(n)}: ${v}`);
  const bodyBytes = new TextEncoder().encode(body);
  lines.push(`Content-Length: ${bodyBytes.length}`);
  const head = new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n");
  const out = new Uint8Array(head.length + bodyBytes.length);
  out.set(head);
  out.set(bodyBytes, head.length);
  return out;
}

export function serializeResponse(
  status: number,
  reason: string,
  headers: Array<[string, string]>,
  body = "",
): Uint8Array {
  return serialize(`SIP/2.0 ${status} ${reason}`, headers, body);
}

export function serializeRequest(
  method: string,
  uri: string,
  headers: Array<[string, string]>,
  body = "",
): Uint8Array {
  return serialize(`${method} ${uri} SIP/2.0`, headers, body);
}

/** Replaces (or adds) the tag parameter of a From/To value. */
export function withTag(nameAddr: string, tag: string): string {
  if (/;\s*tag=/i.test(nameAddr)) return nameAddr;
  return `${nameAddr};tag=${tag}`;
}

export function isRequest(m: SipMessage): m is SipRequest {
  return m.kind === "request";
}
