/**
 * OriginSupervisor: keeps one origin child process serving and replaces it when it recycles.
 *
 * Why: in Deno 2.9.6 no wrtc peer is ever garbage-collected. `napi_async_init` keeps a strong handle on its
 * resource until `napi_async_destroy`, and node-webrtc's objects pass themselves as that resource and destroy the
 * context only in their destructor, so every closed peer (and its tracks, channels, sink and source) stays in
 * memory (`deno task bench wrtc_finalization`; Node frees them; docs/wrtc-in-deno.md). The fix belongs in Deno;
 * until then a long-lived origin process must be replaced now and then, the way php-fpm/gunicorn recycle
 * workers after N requests.
 *
 * Protocol with the child (`main.ts origin` with PARLEY_ORIGIN_CHILD=1): JSON-line messages of one union,
 * `SupervisorMessage` (origin/supervisor_protocol.ts); the child's human lines ("Parley origin <id> serving at
 * <url>", …) are relayed as they are and never parsed.
 * - it sends `serving` when it accepts sessions, `recycling_soon` a tenth of its sessions before the end (the
 *   supervisor starts the next generation then, so it has loaded its models by the time the old one stops
 *   accepting; meanwhile both serve), and `recycling` when it stops accepting (its heartbeat says draining, so
 *   the edge routes new sessions to the successor). It stops accepting only once the supervisor has written
 *   `successor_serving` to its stdin (sent when the successor sends `serving`): a slow or crashing successor
 *   makes the old process serve past its count rather than leave the node refusing sessions. The old one exits
 *   0 when its last session has ended.
 * - its stdin is a pipe nobody writes to: EOF means the supervisor is gone, and the child shuts down (bye to its
 *   sessions) instead of living on as an orphan.
 * - each generation has its own node id (`<base>.<generation>`) and a port from ORIGIN_PORT..ORIGIN_PORT+3 that
 *   no live child holds, so routing state in Postgres stays exact.
 * A child that exits while it is the serving one crashed: it is restarted with a backoff (1 s doubling to 30 s,
 * reset once a child has served for a minute). close() sends SIGTERM to every child and waits (SIGKILL after
 * the grace), then the state is `closed`.
 */
import type { Logger } from "../lib/log.ts";
import {
  decodeSupervisorMessage,
  encodeSupervisorMessage,
  type SupervisorMessage,
} from "./supervisor_protocol.ts";

export type ChildRole = "starting" | "serving" | "draining" | "exited";

export interface SupervisedChild {
  readonly generation: number;
  readonly pid: number;
  readonly port: number;
  readonly nodeId: string;
  role: ChildRole;
  /** It sent `recycling_soon` (or `recycling`): a younger generation must exist. */
  wantsSuccessor?: boolean;
  readonly exited: Promise<Deno.CommandStatus>;
}

export interface SupervisorOptions {
  /** Program and arguments of one origin child. */
  command: string;
  args: string[];
  /** Environment for the child (merged over this process's); the supervisor adds NODE_ID, ORIGIN_PORT, … */
  env?: Record<string, string>;
  baseNodeId: string;
  /** First port of the four the children take turns on; 0 = ephemeral ports. */
  basePort: number;
  /** ORIGIN_URL as configured (its port is replaced by the child's). */
  originUrl?: string;
  log: Logger;
  /** SIGTERM → SIGKILL grace per child on close(). */
  stopGraceMs?: number;
  restartBackoffMs?: { min: number; max: number };
  /** Human lines from the children's stdout (default: written to this process's stdout); messages are not. */
  onLine?: (line: string, child: SupervisedChild) => void;
}

const PORT_SPAN = 4;

export class OriginSupervisor {
  #state: "running" | "closing" | "closed" = "running";
  #generation = 0;
  #backoff: number;
  #restartTimer?: ReturnType<typeof setTimeout>;
  #closing?: Promise<void>;
  readonly #children = new Set<
    SupervisedChild & {
      proc: Deno.ChildProcess;
      stdin: WritableStreamDefaultWriter<Uint8Array>;
      startedAt: number;
    }
  >();
  readonly #o: SupervisorOptions;
  readonly #enc = new TextEncoder();
  /** Generations started so far (crash restarts included). */
  started = 0;
  /** Unexpected exits of the serving child. */
  crashes = 0;

  constructor(opts: SupervisorOptions) {
    this.#o = opts;
    this.#backoff = opts.restartBackoffMs?.min ?? 1000;
  }

  get state(): "running" | "closing" | "closed" {
    return this.#state;
  }

  /** Live children, oldest first. */
  children(): SupervisedChild[] {
    return [...this.#children];
  }

  start(): void {
    if (this.#state !== "running") throw new Error(`supervisor is ${this.#state}`);
    if (this.#children.size || this.#restartTimer) return;
    this.#spawn();
  }

  #freePort(generation: number): number {
    if (this.#o.basePort === 0) return 0;
    const used = new Set([...this.#children].map((c) => c.port));
    for (let i = 0; i < PORT_SPAN; i++) {
      const p = this.#o.basePort + ((generation + i) % PORT_SPAN);
      if (!used.has(p)) return p;
    }
    throw new Error(`all ${PORT_SPAN} origin ports from ${this.#o.basePort} are held by draining children`);
  }

  #spawn(): void {
    const generation = this.#generation++;
    let port: number;
    try {
      port = this.#freePort(generation);
    } catch (err) {
      this.#o.log.error("cannot start an origin generation", { generation, err: String(err) });
      this.#scheduleRestart();
      return;
    }
    const nodeId = `${this.#o.baseNodeId}.${generation}`;
    const env: Record<string, string> = {
      ...this.#o.env,
      PARLEY_ORIGIN_CHILD: "1",
      NODE_ID: nodeId,
      ORIGIN_PORT: String(port),
    };
    if (this.#o.originUrl) {
      const u = new URL(this.#o.originUrl);
      u.port = String(port);
      env.ORIGIN_URL = u.toString().replace(/\/$/, "");
    }
    const proc = new Deno.Command(this.#o.command, {
      args: this.#o.args,
      env,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const child = {
      generation,
      pid: proc.pid,
      port,
      nodeId,
      role: "starting" as ChildRole,
      exited: proc.status,
      proc,
      stdin: proc.stdin.getWriter(),
      startedAt: performance.now(),
    };
    this.#children.add(child);
    this.started++;
    this.#o.log.info("origin child started", { generation, pid: proc.pid, node_id: nodeId, port });
    void this.#readLines(child);
    void proc.status.then((status) => this.#onExit(child, status));
  }

  async #readLines(
    child: SupervisedChild & { proc: Deno.ChildProcess; stdin: WritableStreamDefaultWriter<Uint8Array> },
  ): Promise<void> {
    const dec = new TextDecoder();
    let buf = "";
    try {
      for await (const chunk of child.proc.stdout) {
        buf += dec.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          this.#onLine(buf.slice(0, nl), child);
          buf = buf.slice(nl + 1);
        }
      }
    } catch { /* the child is gone */ }
    if (buf) this.#onLine(buf, child);
  }

  #onLine(line: string, child: SupervisedChild & { stdin: WritableStreamDefaultWriter<Uint8Array> }): void {
    const message = decodeSupervisorMessage(line);
    if (message) return this.#onMessage(message, child);
    try {
      if (this.#o.onLine) this.#o.onLine(line, child);
      else Deno.stdout.writeSync(this.#enc.encode(line + "\n"));
    } catch { /* our stdout is gone: keep reading, the messages still matter */ }
  }

  #onMessage(message: SupervisorMessage, child: SupervisedChild): void {
    switch (message.type) {
      case "serving":
        if (child.role !== "starting") return;
        child.role = "serving";
        // Predecessors that reached their count keep accepting until now: tell them they may stop.
        for (const older of this.#children) {
          if (older.generation < child.generation && older.role === "serving") {
            this.#tell(older, { type: "successor_serving" });
          }
        }
        return;
      case "recycling_soon":
        // Start the successor while this one still serves: both accept until this one reaches its count, so
        // there is no window in which the node refuses sessions while a new process loads its models.
        this.#ensureSuccessor(child);
        return;
      case "recycling":
        if (child.role === "draining") return;
        child.role = "draining";
        this.#o.log.info("origin child recycling", { generation: child.generation, pid: child.pid });
        this.#ensureSuccessor(child);
        return;
      case "successor_serving":
        this.#o.log.warn("origin child sent a supervisor-only message", { generation: child.generation });
        return;
    }
  }

  #tell(
    child: SupervisedChild & { stdin: WritableStreamDefaultWriter<Uint8Array> },
    message: SupervisorMessage,
  ): void {
    child.stdin.write(this.#enc.encode(encodeSupervisorMessage(message) + "\n")).catch(
      () => {/* it exited */},
    );
  }

  #ensureSuccessor(child: SupervisedChild): void {
    child.wantsSuccessor = true;
    if (this.#state !== "running") return;
    if ([...this.#children].some((c) => c.generation > child.generation)) return;
    this.#spawn();
  }

  #onExit(child: SupervisedChild & { startedAt: number }, status: Deno.CommandStatus): void {
    const wasServing = child.role === "serving" || child.role === "starting";
    child.role = "exited";
    this.#children.delete(child as never);
    const fields = { generation: child.generation, pid: child.pid, code: status.code, signal: status.signal };
    if (this.#state !== "running" || !wasServing) {
      this.#o.log.info("origin child exited", fields);
      return;
    }
    // A serving (or starting) generation died on its own: a crash. Start another if nobody serves, or if it was
    // the successor an older generation is waiting for (that one would otherwise serve past its count forever).
    this.crashes++;
    this.#o.log.error("origin child exited unexpectedly", fields);
    const live = [...this.#children];
    const serving = live.some((c) => c.role === "serving" || c.role === "starting");
    const orphaned = live.some((c) => c.wantsSuccessor && !live.some((d) => d.generation > c.generation));
    if (serving && !orphaned) return;
    if (performance.now() - child.startedAt > 60_000) this.#backoff = this.#o.restartBackoffMs?.min ?? 1000;
    this.#scheduleRestart();
  }

  #scheduleRestart(): void {
    if (this.#state !== "running" || this.#restartTimer) return;
    const delay = this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, this.#o.restartBackoffMs?.max ?? 30_000);
    this.#o.log.info("restarting origin child", { in_ms: delay });
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#state === "running") this.#spawn();
    }, delay);
  }

  /** Idempotent: SIGTERM every child (each drains and says bye to its sessions), wait, SIGKILL stragglers. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#state = "closing";
      clearTimeout(this.#restartTimer);
      this.#restartTimer = undefined;
      const grace = this.#o.stopGraceMs ?? 20_000;
      await Promise.all([...this.#children].map(async (c) => {
        try {
          c.proc.kill("SIGTERM");
        } catch { /* already exited */ }
        let timer: ReturnType<typeof setTimeout> | undefined;
        const killed = new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            this.#o.log.error("origin child ignored SIGTERM, killing it", { pid: c.pid });
            try {
              c.proc.kill("SIGKILL");
            } catch { /* gone */ }
            resolve();
          }, grace);
        });
        await Promise.race([c.exited, killed]);
        clearTimeout(timer);
        await c.exited;
        await c.stdin.close().catch(() => {/* already closed */});
      }));
      this.#state = "closed";
    })();
    return this.#closing;
  }
}
