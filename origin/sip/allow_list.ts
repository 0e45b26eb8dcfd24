/** Trunk allow-list: exact IPv4 addresses or IPv4 CIDR prefixes ("203.0.113.0/24"). */
function ipv4ToInt(a: string): number | null {
  const m = a.match(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return null;
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

export function isInAllowList(address: string, list: string[]): boolean {
  const addr = ipv4ToInt(address.replace(/^::ffff:/, ""));
  if (addr === null) return list.includes(address);
  for (const entry of list) {
    const [net, bitsText] = entry.split("/");
    const base = ipv4ToInt(net);
    if (base === null) continue;
    const bits = bitsText === undefined ? 32 : Number(bitsText);
    if (!Number.isInteger(bits) || bits < 0 || bits > 32) continue;
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    if (((addr & mask) >>> 0) === ((base & mask) >>> 0)) return true;
  }
  return false;
}
