/**
 * Entry point of the origin's RTP worker (started by RtpWorker, rtp_worker_host.ts): every call's RTP/RTCP
 * sockets and the precise send clock live here, off the main isolate. Logs go to main as `log` events, so
 * they follow the main process's level and sink.
 */
/// <reference lib="deno.worker" />
import { configureLogging, log } from "../../lib/log.ts";
import { RtpWorkerRuntime } from "./rtp_worker_runtime.ts";
import type { RtpWorkerCommand, RtpWorkerEvent } from "./rtp_worker_types.ts";

const post = (msg: RtpWorkerEvent, transfer: Transferable[] = []) => self.postMessage(msg, transfer);

configureLogging({
  level: "debug",
  sink: (line) => {
    const { level, msg, ts: _ts, ...fields } = JSON.parse(line);
    post({ type: "log", level, msg, fields });
  },
});

const runtime = new RtpWorkerRuntime({ post, log: log.child({ component: "rtp_worker" }) });
self.onmessage = (e: MessageEvent<RtpWorkerCommand>) => void runtime.handle(e.data);
post({ type: "ready" });
