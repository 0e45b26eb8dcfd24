/**
 * Entry point of a room forward worker (started by ForwardWorker, forward_worker_host.ts): `shared` rooms'
 * listener peers live here, off the main isolate. Logs go to main as `log` events, so they follow the main
 * process's level and sink.
 *
 * An unhandled rejection is logged and counted, not fatal: werift leaves some of its SCTP and DTLS promises
 * unhandled when a peer goes away mid-handshake, and one such promise must not end every listener this worker
 * carries (the peer concerned closes through its own state or liveness checks).
 */
/// <reference lib="deno.worker" />
import { configureLogging, log } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";
import { ForwardWorkerRuntime } from "./forward_worker_runtime.ts";
import type { ForwardCommand, ForwardWorkerEvent } from "./forward_worker_types.ts";

const post = (msg: ForwardWorkerEvent) => self.postMessage(msg);

configureLogging({
  level: "debug",
  sink: (line) => {
    const { level, msg, ts: _ts, ...fields } = JSON.parse(line);
    post({ type: "log", level, msg, fields });
  },
});

const workerLog = log.child({ component: "room_forward_worker" });
const unhandled = registry.counter(
  "parley_room_forward_unhandled_rejections_total",
  "Unhandled promise rejections in a room forward worker (logged, not fatal)",
);
self.addEventListener("unhandledrejection", (e) => {
  e.preventDefault();
  unhandled.inc();
  workerLog.warn("unhandled rejection in forward worker", { err: e.reason as Error });
});

const runtime = new ForwardWorkerRuntime({ post, log: workerLog });
self.onmessage = (e: MessageEvent<ForwardCommand>) => runtime.handle(e.data);
post({ type: "ready" });
