/**
 * Long-lived responses of this edge process (session follow and room viewer SSE streams): they never finish on
 * their own, so Deno.serve's graceful shutdown would wait for them until the process's grace ran out. The edge
 * ends them first when it closes (EdgeServer.close), and on SIGTERM/SIGINT; clients reconnect with
 * `Last-Event-ID`, to this edge's successor or another edge, and lose nothing.
 */
const open = new Set<() => void>();
const SHUTDOWN_SIGNALS: Deno.Signal[] = ["SIGTERM", "SIGINT"];

/** End every open long-lived stream of this process. */
export function endOpenStreams(): void {
  for (const stop of [...open]) stop();
}

/** Number of long-lived streams open in this process. */
export function openStreamCount(): number {
  return open.size;
}

/** Register a stream's `stop`; the returned function unregisters it (call it from `stop`). */
export function trackOpenStream(stop: () => void): () => void {
  if (open.size === 0) {
    for (const s of SHUTDOWN_SIGNALS) Deno.addSignalListener(s, endOpenStreams);
  }
  open.add(stop);
  return () => {
    if (!open.delete(stop)) return;
    if (open.size === 0) {
      for (const s of SHUTDOWN_SIGNALS) Deno.removeSignalListener(s, endOpenStreams);
    }
  };
}
