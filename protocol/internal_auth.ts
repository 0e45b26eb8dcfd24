/**
 * Edge → origin calls are signed with HMAC-SHA256 over (timestamp, method, path+query, body digest) with the
 * shared INTERNAL_SECRET. The origin rejects missing, wrong or stale (> 30 s skew) signatures, so its internal
 * API is never usable by clients even if its port is reachable.
 */
export const SIGNATURE_HEADER = "x-parley-signature";
export const MAX_SKEW_MS = 30_000;

const enc = new TextEncoder();
const keyCache = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
  let k = keyCache.get(secret);
  if (!k) {
    k = crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
      "verify",
    ]);
    keyCache.set(secret, k);
  }
  return k;
}

function hex(buf: ArrayBuffer): string {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function digest(body: Uint8Array): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", body as Uint8Array<ArrayBuffer>));
}

async function mac(secret: string, t: number, method: string, pathAndQuery: string, body: Uint8Array) {
  const msg = `${t}\n${method.toUpperCase()}\n${pathAndQuery}\n${await digest(body)}`;
  return hex(await crypto.subtle.sign("HMAC", await hmacKey(secret), enc.encode(msg)));
}

export async function signRequest(
  secret: string,
  method: string,
  pathAndQuery: string,
  body: Uint8Array = new Uint8Array(),
  now = Date.now(),
): Promise<string> {
  return `t=${now},v1=${await mac(secret, now, method, pathAndQuery, body)}`;
}

export async function verifyRequest(
  secret: string,
  header: string | undefined | null,
  method: string,
  pathAndQuery: string,
  body: Uint8Array = new Uint8Array(),
  now = Date.now(),
): Promise<{ ok: true } | { ok: false; reason: string }> {
  if (!header) return { ok: false, reason: "missing signature" };
  const m = /^t=(\d{1,16}),v1=([0-9a-f]{64})$/.exec(header);
  if (!m) return { ok: false, reason: "malformed signature" };
  const t = Number(m[1]);
  if (Math.abs(now - t) > MAX_SKEW_MS) return { ok: false, reason: "stale signature" };
  const expected = await mac(secret, t, method, pathAndQuery, body);
  // constant-time compare
  let diff = 0;
  for (let i = 0; i < 64; i++) diff |= expected.charCodeAt(i) ^ m[2].charCodeAt(i);
  return diff === 0 ? { ok: true } : { ok: false, reason: "bad signature" };
}
