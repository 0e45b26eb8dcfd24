/**
 * Per-credential token bucket (per edge process). Requests beyond the burst get 429 with Retry-After.
 * Buckets idle for a minute are forgotten, so memory stays bounded by active keys.
 */
import type { MiddlewareHandler } from "hono";
import { ApiError } from "../lib/errors.ts";
import { registry } from "../lib/metrics.ts";
import type { EdgeVariables } from "./auth.ts";

const limited = registry.counter("parley_rate_limited_total", "Requests rejected by the per-key rate limit");

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private sweeps = 0;
  constructor(private readonly ratePerSecond: number, private readonly burst: number) {}

  /** Take one token; returns 0 when allowed, otherwise seconds until one is available. */
  take(id: string, now = performance.now()): number {
    let b = this.buckets.get(id);
    if (!b) {
      b = { tokens: this.burst, at: now };
      this.buckets.set(id, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.ratePerSecond);
    b.at = now;
    if (++this.sweeps % 1000 === 0) this.sweep(now);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return (1 - b.tokens) / this.ratePerSecond;
  }

  private sweep(now: number): void {
    for (const [k, b] of this.buckets) if (now - b.at > 60_000) this.buckets.delete(k);
  }
}

/** Must run after requireScope (it keys on the principal's API key). */
export function rateLimit(limiter: RateLimiter): MiddlewareHandler<{ Variables: EdgeVariables }> {
  return async (c, next) => {
    const p = c.get("principal");
    const wait = limiter.take(p.keyId);
    if (wait > 0) {
      limited.inc();
      throw new ApiError(429, "rate_limited", "rate limit exceeded for this API key", {
        "Retry-After": String(Math.max(1, Math.ceil(wait))),
      });
    }
    await next();
  };
}
