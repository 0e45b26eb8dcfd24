/**
 * Are @roamhq/wrtc's native objects ever finalized in this runtime? Creates N peers (offer, close), registers
 * each JS wrapper and its native `_pc` object with a FinalizationRegistry, forces full GCs, and prints how many
 * were collected and the RSS. In Deno 2.9.6: 0 of N native objects (the churn benchmark's RSS growth); the
 * same loop under Node 20 collects N of N.
 *
 *   deno run -A --v8-flags=--expose-gc bench/wrtc_finalization.ts [N]
 */
import { RTCPeerConnection } from "../origin/session/wrtc.ts";

const N = Number(Deno.args[0] ?? 300);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error("run with --v8-flags=--expose-gc");
  Deno.exit(2);
}
// One peer kept for the life of the process: without it wrtc rebuilds its factory (and leaks its threads) per peer.
const keep = new RTCPeerConnection();
const collected = { wrapper: 0, native: 0 };
const registry = new FinalizationRegistry<"wrapper" | "native">((kind) => collected[kind]++);
const rssMiB = () => Math.round(Deno.memoryUsage().rss / 1048576);
const rss0 = rssMiB();
for (let i = 1; i <= N; i++) {
  const pc = new RTCPeerConnection();
  pc.createDataChannel("x");
  await pc.setLocalDescription(await pc.createOffer());
  pc.close();
  await new Promise((r) => setTimeout(r, 0));
  registry.register(pc, "wrapper");
  registry.register((pc as unknown as { _pc: object })._pc, "native");
  if (i % 100 === 0 || i === N) {
    for (let k = 0; k < 3; k++) gc();
    await new Promise((r) => setTimeout(r, 50));
    console.log(
      `${i} peers: RSS ${rss0} → ${rssMiB()} MiB; finalized: ${collected.wrapper} JS wrappers, ` +
        `${collected.native} native objects`,
    );
  }
}
keep.close();
Deno.exit(0); // wrtc segfaults on a natural exit after peers existed (see STACK-NOTES)
