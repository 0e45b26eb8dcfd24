/**
 * A process-wide guard for promise rejections nobody handled. Deno's default ends the process, and with it
 * every call, session and room listener it serves, for what is one forgotten `.catch` on one request's path.
 * The guard logs the rejection at error level with its stack and counts it (`parley_unhandled_rejections_total`,
 * worth an alert), and the process goes on. Installed by main.ts for every role; media workers keep their own
 * (origin/rooms/forward_worker.ts).
 */
import type { Logger } from "./log.ts";
import { registry } from "./metrics.ts";

const unhandled = registry.counter(
  "parley_unhandled_rejections_total",
  "Promise rejections nobody handled in the main isolate (logged with the stack; the process goes on)",
);

/** Installs the guard; the function returned removes it (tests). */
export function guardUnhandledRejections(log: Logger): () => void {
  const onRejection = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    unhandled.inc();
    log.error("unhandled promise rejection", {
      err: e.reason instanceof Error ? e.reason : String(e.reason),
    });
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  return () => globalThis.removeEventListener("unhandledrejection", onRejection);
}
