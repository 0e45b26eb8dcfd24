/**
 * The web client, served by the edge on the same origin as the API (no CORS, no preflights):
 *   GET /                 the page shell (web/index.html)
 *   GET /rooms/{id}       the same shell; the client shows the room page (captions, Listen)
 *   GET /web/app.js       the bundled client (web/dist/app.js, built by `deno task web:build`; built here at
 *                         start if missing)
 *   GET /web/style.css    the stylesheet
 * Files are read once at start and served from memory with a strong ETag and `Cache-Control: no-cache`
 * (revalidate: a deploy is seen at the next load, unchanged files cost a 304). A strict CSP allows only this
 * origin's scripts, styles and API, plus blob: media (the TTS player).
 */
import type { Context } from "hono";
import type { EdgeApp, EdgeContext } from "./context.ts";
import { buildWebBundle, DIST } from "../web/build.ts";

const WEB = new URL("../web/", import.meta.url);

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "media-src 'self' blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

interface Asset {
  body: Uint8Array<ArrayBuffer>;
  type: string;
  etag: string;
}

async function asset(body: Uint8Array<ArrayBuffer> | string, type: string): Promise<Asset> {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const etag = `"${Array.from(digest.slice(0, 12), (b) => b.toString(16).padStart(2, "0")).join("")}"`;
  return { body: bytes, type, etag };
}

async function loadBundle(ctx: EdgeContext): Promise<string> {
  try {
    return await Deno.readTextFile(DIST);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    ctx.log.warn(
      "web/dist/app.js missing; bundling the web client now (run `deno task web:build` to commit it)",
    );
    const tmp = await Deno.makeTempFile({ suffix: ".js" });
    try {
      return await buildWebBundle(tmp);
    } finally {
      await Deno.remove(tmp).catch(() => {});
    }
  }
}

/** Serve the web client. Loading is lazy (first request) so edge start-up is not slowed by reading files. */
export function webRoutes(app: EdgeApp, ctx: EdgeContext): void {
  let assets: Promise<Map<string, Asset>> | null = null;
  const load = () =>
    assets ??= (async () => {
      const m = new Map<string, Asset>();
      m.set("/", await asset(await Deno.readFile(new URL("index.html", WEB)), "text/html; charset=utf-8"));
      m.set(
        "/web/style.css",
        await asset(await Deno.readFile(new URL("style.css", WEB)), "text/css; charset=utf-8"),
      );
      m.set("/web/app.js", await asset(await loadBundle(ctx), "text/javascript; charset=utf-8"));
      return m;
    })().catch((e) => {
      assets = null; // retry on the next request
      throw e;
    });

  const serve = async (c: Context, path: string) => {
    const a = (await load()).get(path)!;
    c.header("Cache-Control", "no-cache");
    c.header("ETag", a.etag);
    c.header("X-Content-Type-Options", "nosniff");
    c.header("Referrer-Policy", "no-referrer");
    if (path === "/") {
      c.header("Content-Security-Policy", CSP);
      c.header("X-Frame-Options", "DENY");
      c.header("Permissions-Policy", "microphone=(self), camera=(), geolocation=()");
    }
    const inm = c.req.header("if-none-match");
    if (inm && inm.split(/\s*,\s*/).includes(a.etag)) return c.body(null, 304);
    c.header("Content-Type", a.type);
    return c.body(a.body, 200);
  };

  app.get("/", (c) => serve(c, "/"));
  app.get("/rooms/:id", (c) => serve(c, "/"));
  app.get("/index.html", (c) => c.redirect("/", 301));
  app.get("/web/app.js", (c) => serve(c, "/web/app.js"));
  app.get("/web/style.css", (c) => serve(c, "/web/style.css"));
}
