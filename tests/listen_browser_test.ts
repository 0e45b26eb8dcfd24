/**
 * `GET /v1/listen` from Chromium (playwright-core, Debian's browser): the page gets only a browser token
 * (minted with the API key outside the page), opens `new WebSocket(url, ["parley.listen.v1",
 * "bearer.<token>"])` — browsers cannot set Authorization — streams espeak speech as PCM16 frames in real
 * time from the page, and must see partial then confirmed transcripts with consecutive seq.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { chromiumAvailable, launchChromium } from "./web/browser.ts";
import { startProcessStack } from "./web/stack.ts";
import { hasPartialBeforeConfirmed } from "./listen_client.ts";
import type { ServerEvent } from "../protocol/session_messages.ts";

const WAV = Deno.readFileSync(new URL("./fixtures/speech/two_phrases_16k.wav", import.meta.url));

Deno.test({
  name: "GET /v1/listen from Chromium with a browser token in the subprotocol",
  ignore: !chromiumAvailable(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const stack = await startProcessStack({ ASR_ENGINE: "ctc" }, { readyMs: 400_000 });
    const browser = await launchChromium();
    try {
      const minted = await fetch(`${stack.url}/v1/tokens`, {
        method: "POST",
        headers: { authorization: `Bearer ${stack.adminKey}`, "content-type": "application/json" },
        body: JSON.stringify({ scopes: ["sessions"], ttl_s: 600 }),
      });
      assert.equal(minted.status, 201);
      const { token } = await minted.json() as { token: string };
      const page = await browser.context.newPage();
      await page.goto(`${stack.url}/healthz`);
      const result = await page.evaluate(async ({ url, token, wavB64 }) => {
        const bytes = Uint8Array.from(atob(wavB64), (ch) => ch.charCodeAt(0));
        const ws = new WebSocket(url, ["parley.listen.v1", `bearer.${token}`]);
        ws.binaryType = "arraybuffer";
        const events: Array<Record<string, unknown>> = [];
        let protocol = "";
        const done = new Promise<{ code: number; reason: string }>((resolve) => {
          ws.onclose = (e) => resolve({ code: e.code, reason: e.reason });
        });
        const confirmed = new Promise<void>((resolve) => {
          ws.onmessage = (e) => {
            if (typeof e.data !== "string") return;
            const ev = JSON.parse(e.data);
            events.push(ev);
            if (ev.type === "transcript" && ev.status === "confirmed") resolve();
          };
        });
        await new Promise<void>((resolve, reject) => {
          ws.onopen = () => {
            protocol = ws.protocol;
            resolve();
          };
          ws.onerror = () => reject(new Error("websocket error"));
        });
        // The page streams PCM16 at 16 kHz in 20 ms frames, paced by its own clock, then 1.5 s of silence.
        const pcm = bytes.subarray(44);
        const frame = 640;
        const silence = new Uint8Array(24_000 * 2);
        const all = new Uint8Array(pcm.length + silence.length);
        all.set(pcm);
        const t0 = performance.now();
        for (let off = 0, k = 0; off < all.length && ws.readyState === WebSocket.OPEN; off += frame, k++) {
          ws.send(all.slice(off, off + frame));
          const wait = t0 + (k + 1) * 20 - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
        await Promise.race([confirmed, new Promise((r) => setTimeout(r, 60_000))]);
        ws.send(JSON.stringify({ type: "bye" }));
        const closed = await done;
        return { protocol, events, closed };
      }, {
        url: `${stack.url.replace("http", "ws")}/v1/listen?sample_rate=16000`,
        token,
        wavB64: Buffer.from(WAV).toString("base64"),
      });
      assert.equal(result.protocol, "parley.listen.v1", "the server selects the listen subprotocol");
      const events = result.events as unknown as ServerEvent[];
      const transcripts = events.filter((e) => e.type === "transcript");
      assert.ok(transcripts.some((e) => e.status === "confirmed"), JSON.stringify(events).slice(0, 1500));
      // Every partial precedes its segment's confirmed result (partials may be shed under load, so their
      // presence is checked by tests/listen_test.ts, which retries; here their order is).
      for (const p of transcripts) {
        if (p.status !== "partial") continue;
        const c = transcripts.find((e) => e.status === "confirmed" && e.segment_id === p.segment_id);
        if (c) assert.ok(p.seq < c.seq, `partial ${p.seq} after confirmed ${c.seq}`);
      }
      if (!hasPartialBeforeConfirmed(events)) console.warn("browser stream: partials were shed under load");
      for (let i = 1; i < result.events.length; i++) {
        assert.equal(result.events[i].seq, (result.events[i - 1].seq as number) + 1);
      }
      assert.equal(result.events.at(-1)?.type, "bye");
      assert.equal(result.closed.code, 1000, result.closed.reason);
    } finally {
      await browser.close();
      await stack.close();
    }
  },
});
