/**
 * RTP/RTCP wall-clock time (RFC 3550 §4): seconds since 1900-01-01 in the high 32 bits, the fraction of a
 * second in units of 2^-32 in the low 32 bits.
 */

/** Seconds from 1900-01-01 (NTP's epoch) to 1970-01-01 (Unix's). */
export const NTP_EPOCH_OFFSET_S = 2_208_988_800;

/** The 64-bit NTP timestamp of an instant given in Unix epoch milliseconds. */
export function ntp64OfEpochMs(epochMs: number): bigint {
  const s = Math.floor(epochMs / 1000);
  const frac = Math.floor(((epochMs - s * 1000) / 1000) * 2 ** 32);
  return (BigInt((s + NTP_EPOCH_OFFSET_S) >>> 0) << 32n) | BigInt(Math.min(frac, 0xffffffff) >>> 0);
}
