import assert from "node:assert/strict";
import { type LogFields, Logger } from "./log.ts";
import { registry } from "./metrics.ts";
import { guardUnhandledRejections } from "./unhandled_rejection.ts";

const count = () =>
  registry.snapshot().find((f) => f.name === "parley_unhandled_rejections_total")?.series[0]?.value ?? 0;

class Captured extends Logger {
  readonly errors: Array<{ msg: string; fields?: LogFields }> = [];
  override error(msg: string, fields?: LogFields): void {
    this.errors.push({ msg, fields });
  }
}

Deno.test("unhandled rejection guard: counted and logged with the error, the process goes on; removable", async () => {
  const captured = new Captured();
  const unguard = guardUnhandledRejections(captured);
  try {
    const before = count();
    void Promise.reject(new Error("nobody catches this"));
    void Promise.reject("a bare string");
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(count(), before + 2);
    assert.equal(captured.errors.length, 2);
    assert.equal((captured.errors[0].fields?.err as Error).message, "nobody catches this");
    assert.equal(captured.errors[1].fields?.err, "a bare string");
  } finally {
    unguard();
  }
});
