/** The web client, served by the edge on the same origin as the API (no CORS). Filled in by the web issue. */
import type { EdgeApp, EdgeContext } from "./context.ts";

export function webRoutes(app: EdgeApp, _ctx: EdgeContext): void {
  app.get("/", (c) =>
    c.html(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Parley</title></head>` +
        `<body><h1>Parley</h1><p>Real-time speech service. API under <code>/v1</code>.</p></body></html>`,
    ));
}
