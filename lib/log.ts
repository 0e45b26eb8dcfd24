/**
 * Structured JSON logging: one JSON object per line on stderr (stdout stays free for CLI output such as the
 * first admin key). Every record carries `ts`, `level`, `msg`, the component that wrote it and any fields.
 * A child logger binds fields (request id, session id, node id) so that stages never re-pass them.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

let minLevel: number = LEVELS[(Deno.env.get("LOG_LEVEL") as LogLevel) ?? "info"] ?? LEVELS.info;
let sink: (line: string) => void = (line) => console.error(line);

/** Tests capture logs or silence them; the process sets the level from config. */
export function configureLogging(opts: { level?: LogLevel; sink?: (line: string) => void }): void {
  if (opts.level) minLevel = LEVELS[opts.level];
  if (opts.sink) sink = opts.sink;
}

export type LogFields = Record<string, unknown>;

export class Logger {
  constructor(private readonly bound: LogFields = {}) {}

  child(fields: LogFields): Logger {
    return new Logger({ ...this.bound, ...fields });
  }

  debug(msg: string, fields?: LogFields): void {
    this.write("debug", msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.write("info", msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.write("warn", msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.write("error", msg, fields);
  }

  private write(level: LogLevel, msg: string, fields?: LogFields): void {
    if (LEVELS[level] < minLevel) return;
    const record: LogFields = { ts: new Date().toISOString(), level, msg, ...this.bound, ...fields };
    for (const [k, v] of Object.entries(record)) {
      if (v instanceof Error) record[k] = { name: v.name, message: v.message, stack: v.stack };
    }
    sink(JSON.stringify(record));
  }
}

export const log = new Logger();
