/** Server-Sent Events and streamed bodies for edge routes. */
import type { Gauge } from "../lib/metrics.ts";

const enc = new TextEncoder();

/** One SSE frame. */
export function sseFrame(event: string, data: unknown): Uint8Array {
  return enc.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

/** An SSE comment line: keeps proxies from closing an idle stream. */
export function sseComment(text: string): Uint8Array {
  return enc.encode(`: ${text}\n\n`);
}

/** Response headers of an SSE stream. */
export const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  "x-accel-buffering": "no",
} as const;

/**
 * A pull-driven byte stream from an async generator; cancel (client gone) stops the generator and aborts
 * `abort`. `open` counts the streams open.
 */
export function streamOf(
  gen: AsyncGenerator<Uint8Array>,
  abort: AbortController,
  open: Gauge,
): ReadableStream<Uint8Array> {
  open.inc();
  let live = true;
  const finish = () => {
    if (live) {
      live = false;
      open.dec();
    }
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await gen.next();
        if (next.done) {
          finish();
          controller.close();
        } else controller.enqueue(next.value);
      } catch (err) {
        finish();
        controller.error(err);
      }
    },
    async cancel() {
      abort.abort();
      finish();
      await gen.return(undefined).catch(() => {});
    },
  });
}
