/**
 * SIP digest authentication (RFC 3261 22, RFC 8760 for SHA-256, qop=auth). Nonces are stateless: a
 * timestamp signed with HMAC-SHA-256 under a per-process secret, valid for `nonceTtlMs` (an expired but
 * genuine nonce gets `stale=true`, so the phone retries without asking the user).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { CredentialLookup, SipRequest } from "./sip_types.ts";
import { headerValue } from "./message.ts";

export type DigestAlgorithm = "MD5" | "SHA-256";

export type DigestResult =
  | { ok: true; username: string }
  | { ok: false; stale: boolean; reason: string };

/** Parses `Digest a=b, c="d"` into a lower-case-keyed map; null if it is not a Digest credential. */
export function parseAuthParams(value: string): Record<string, string> | null {
  const m = value.match(/^\s*Digest\s+(.*)$/is);
  if (!m) return null;
  const out: Record<string, string> = {};
  const re = /\s*([a-zA-Z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))\s*(?:,|$)/gy;
  let rest = m[1];
  let match: RegExpExecArray | null;
  let consumed = 0;
  while ((match = re.exec(rest)) !== null) {
    out[match[1].toLowerCase()] = match[2] !== undefined ? match[2].replace(/\\(.)/g, "$1") : match[3];
    consumed = re.lastIndex;
    if (consumed >= rest.length) break;
  }
  rest = rest.slice(consumed).trim();
  return rest === "" ? out : null;
}

function hash(alg: DigestAlgorithm, s: string): string {
  return createHash(alg === "MD5" ? "md5" : "sha256").update(s).digest("hex");
}

export function digestResponse(p: {
  algorithm: DigestAlgorithm;
  ha1: string;
  nonce: string;
  method: string;
  uri: string;
  qop?: string;
  nc?: string;
  cnonce?: string;
}): string {
  const ha2 = hash(p.algorithm, `${p.method}:${p.uri}`);
  return p.qop
    ? hash(p.algorithm, `${p.ha1}:${p.nonce}:${p.nc}:${p.cnonce}:${p.qop}:${ha2}`)
    : hash(p.algorithm, `${p.ha1}:${p.nonce}:${ha2}`);
}

export function computeHa1(alg: DigestAlgorithm, user: string, realm: string, password: string): string {
  return hash(alg, `${user}:${realm}:${password}`);
}

export class DigestAuthenticator {
  readonly #secret = randomBytes(32);
  constructor(
    readonly realm: string,
    private readonly lookup: CredentialLookup,
    private readonly nonceTtlMs = 300_000,
    /** Offered in this order. Some UACs (SIPp 3.6) answer the first challenge only and know MD5 only. */
    private readonly algorithms: DigestAlgorithm[] = ["SHA-256", "MD5"],
  ) {}

  #nonce(now = Date.now()): string {
    const ts = now.toString(36);
    const mac = createHmac("sha256", this.#secret).update(ts).digest("base64url").slice(0, 22);
    return `${ts}.${mac}`;
  }

  /** 'fresh' | 'stale' | 'forged' */
  #checkNonce(nonce: string): "fresh" | "stale" | "forged" {
    const [ts, mac] = nonce.split(".");
    if (!ts || !mac) return "forged";
    const want = createHmac("sha256", this.#secret).update(ts).digest("base64url").slice(0, 22);
    if (
      want.length !== mac.length ||
      !timingSafeEqual(new TextEncoder().encode(want), new TextEncoder().encode(mac))
    ) {
      return "forged";
    }
    const age = Date.now() - parseInt(ts, 36);
    return age >= 0 && age <= this.nonceTtlMs ? "fresh" : "stale";
  }

  /** WWW-Authenticate headers: SHA-256 first (RFC 8760 8.4), then MD5 for older phones. */
  challenge(stale = false): Array<[string, string]> {
    const nonce = this.#nonce();
    const s = stale ? ", stale=true" : "";
    return this.algorithms.map((alg): [string, string] => [
      "www-authenticate",
      `Digest realm="${this.realm}", nonce="${nonce}", algorithm=${alg}, qop="auth"${s}`,
    ]);
  }

  async verify(req: SipRequest): Promise<DigestResult> {
    const raw = headerValue(req.headers, "authorization");
    if (!raw) return { ok: false, stale: false, reason: "no credentials" };
    const p = parseAuthParams(raw);
    if (!p || !p.username || !p.nonce || !p.uri || !p.response) {
      return { ok: false, stale: false, reason: "malformed credentials" };
    }
    if (p.realm !== this.realm) return { ok: false, stale: false, reason: "wrong realm" };
    const algorithm: DigestAlgorithm | null = !p.algorithm || /^md5$/i.test(p.algorithm)
      ? "MD5"
      : /^sha-256$/i.test(p.algorithm)
      ? "SHA-256"
      : null;
    if (!algorithm) return { ok: false, stale: false, reason: "unsupported algorithm" };
    if (p.qop && (p.qop !== "auth" || !p.nc || !p.cnonce)) {
      return { ok: false, stale: false, reason: "bad qop" };
    }
    const nonceState = this.#checkNonce(p.nonce);
    if (nonceState === "forged") return { ok: false, stale: false, reason: "unknown nonce" };
    const cred = await this.lookup(p.username, this.realm);
    if (!cred) return { ok: false, stale: false, reason: "unknown user" };
    const ha1 = "password" in cred
      ? computeHa1(algorithm, p.username, this.realm, cred.password)
      : algorithm === "MD5"
      ? cred.ha1.md5
      : cred.ha1.sha256;
    if (!ha1) return { ok: false, stale: false, reason: "no credential for algorithm" };
    const want = digestResponse({
      algorithm,
      ha1,
      nonce: p.nonce,
      method: req.method,
      uri: p.uri,
      qop: p.qop,
      nc: p.nc,
      cnonce: p.cnonce,
    });
    const a = new TextEncoder().encode(want);
    const b = new TextEncoder().encode(p.response.toLowerCase());
    if (a.length !== b.length || !timingSafeEqual(a, b)) {
      return { ok: false, stale: false, reason: "wrong response" };
    }
    if (nonceState === "stale") return { ok: false, stale: true, reason: "stale nonce" };
    return { ok: true, username: p.username };
  }
}
