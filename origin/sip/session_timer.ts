/**
 * RFC 4028 session timers, negotiated from the INVITE: the interval (Session-Expires, at least our Min-SE)
 * and who refreshes. When the remote refreshes and no refresh arrives before the interval minus
 * min(32 s, interval/3), the call has expired; when we refresh, we send UPDATE at half the interval.
 */
import { headerValue } from "./message.ts";
import type { SipRequest } from "./sip_types.ts";

export interface SessionTimerOffer {
  interval: number;
  refresher: "uac" | "uas";
  remoteSupportsTimer: boolean;
}

export type SessionTimerDecision =
  | { kind: "none" }
  | { kind: "too_small"; minSe: number }
  | { kind: "ok"; offer: SessionTimerOffer };

export function hasOptionTag(req: SipRequest, header: "supported" | "require", tag: string): boolean {
  return req.headers.some(([n, v]) =>
    n === header && v.split(",").some((t) => t.trim().toLowerCase() === tag)
  );
}

export function negotiateSessionTimer(req: SipRequest, minSe: number): SessionTimerDecision {
  const se = headerValue(req.headers, "session-expires");
  if (!se) return { kind: "none" };
  const m = se.match(/^\s*(\d{1,9})\s*(?:;(.*))?$/);
  if (!m) return { kind: "none" };
  const interval = Number(m[1]);
  const remoteMin = Number(headerValue(req.headers, "min-se")?.match(/^\s*(\d{1,9})/)?.[1] ?? 0);
  const floor = Math.max(minSe, remoteMin);
  if (interval < floor) return { kind: "too_small", minSe: floor };
  const supports = hasOptionTag(req, "supported", "timer") || hasOptionTag(req, "require", "timer");
  const asked = m[2]?.match(/refresher\s*=\s*(uac|uas)/i)?.[1]?.toLowerCase() as "uac" | "uas" | undefined;
  // RFC 4028 9: without a choice from the UAC, the UAS picks; uac if it can refresh, else we must.
  const refresher = asked ?? (supports ? "uac" : "uas");
  return { kind: "ok", offer: { interval, refresher, remoteSupportsTimer: supports } };
}
