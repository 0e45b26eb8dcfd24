/** RFC 3261 timer values (17.1.1.1, table 4). Tests shorten T1 to run retransmission paths quickly. */
export interface SipTimers {
  t1: number;
  t2: number;
  t4: number;
}
export const DEFAULT_TIMERS: SipTimers = { t1: 500, t2: 4000, t4: 5000 };
