import assert from "node:assert/strict";
import dgram from "node:dgram";
import { udpFdOfPort, UdpFdSender } from "./udp_fd_sender.ts";

const bound = (): Promise<dgram.Socket> =>
  new Promise((resolve) => {
    const s = dgram.createSocket("udp4");
    s.bind(0, "127.0.0.1", () => resolve(s));
  });

Deno.test("udp fd sender: sendto on a Deno socket's descriptor leaves from that socket's port", async () => {
  const tx = await bound(), rx = await bound();
  try {
    const fd = udpFdOfPort(tx.address().port);
    assert.ok(fd !== null && fd > 2, `descriptor ${fd}`);
    assert.equal(udpFdOfPort(1), null, "no socket bound to port 1 here");
    assert.equal(udpFdOfPort(tx.address().port, "127.0.0.1"), fd, "found by address and port");
    assert.equal(udpFdOfPort(tx.address().port, "127.0.0.2"), null, "not bound on that address");
    const got: Array<{ data: Uint8Array; port: number }> = [];
    rx.on("message", (data, rinfo) => got.push({ data, port: rinfo.port }));
    const sender = new UdpFdSender(fd!, "127.0.0.1", rx.address().port);
    const buf = new Uint8Array(64).map((_, i) => i);
    for (let i = 0; i < 5; i++) {
      buf[0] = i;
      assert.equal(sender.send(buf, 20), true);
    }
    const until = performance.now() + 2000;
    while (got.length < 5 && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
    assert.equal(got.length, 5);
    assert.deepEqual(got.map((g) => g.data[0]), [0, 1, 2, 3, 4], "in order, each its own bytes");
    assert.ok(
      got.every((g) => g.data.length === 20 && g.port === tx.address().port),
      "length and source port",
    );
    assert.throws(() => new UdpFdSender(fd!, "::1", 5000), /IPv4/);
    // Re-aimed at another receiver; a non-IPv4 destination is refused and nothing is sent there.
    const rx2 = await bound();
    try {
      const got2: number[] = [];
      rx2.on("message", (data) => got2.push(data[0]));
      assert.equal(sender.aim("127.0.0.1", rx2.address().port), true);
      buf[0] = 9;
      assert.equal(sender.send(buf, 20), true);
      const until2 = performance.now() + 2000;
      while (got2.length < 1 && performance.now() < until2) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(got2, [9]);
      assert.equal(got.length, 5, "the first receiver got nothing more");
      assert.equal(sender.aim("::1", 5000), false);
      assert.throws(() => sender.send(buf, 20), /IPv4/);
    } finally {
      rx2.close();
    }
  } finally {
    tx.close();
    rx.close();
  }
});

Deno.test("udp fd sender: the lookup finds the socket opened first among hundreds, by port and address, and never a TCP socket", async () => {
  const first = await bound();
  const others: dgram.Socket[] = [];
  const tcp = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    for (let i = 0; i < 300; i++) others.push(await bound());
    const port = first.address().port;
    const fd = udpFdOfPort(port);
    assert.ok(fd !== null);
    // It is the first socket's own descriptor: what is sent through it leaves from the first socket's port.
    const rx = others.at(-1)!;
    const from = new Promise<number>((resolve) => rx.once("message", (_d, rinfo) => resolve(rinfo.port)));
    new UdpFdSender(fd!, "127.0.0.1", rx.address().port).send(new Uint8Array(8));
    assert.equal(await from, port);
    // A second UDP socket on the same port, another address: each address finds its own.
    const twin = dgram.createSocket("udp4");
    await new Promise<void>((r) => twin.bind(port, "127.0.0.2", r));
    try {
      const twinFd = udpFdOfPort(port, "127.0.0.2");
      assert.ok(twinFd !== null && twinFd !== fd, `twin ${twinFd}, first ${fd}`);
      assert.equal(udpFdOfPort(port, "127.0.0.1"), fd);
    } finally {
      twin.close();
    }
    // A TCP listener's port is not a UDP socket's (unless one of ours drew the same number: then nothing to see).
    const tcpPort = (tcp.addr as Deno.NetAddr).port;
    if (![first, ...others].some((s) => s.address().port === tcpPort)) {
      assert.equal(udpFdOfPort(tcpPort, "127.0.0.1"), null);
    }
  } finally {
    tcp.close();
    first.close();
    for (const s of others) s.close();
  }
});
