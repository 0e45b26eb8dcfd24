// 100 wrapped objects with (argv: true) or without (false) an async context; full GCs; how many were collected.
import { createRequire } from "node:module";
const addon = createRequire(import.meta.url)(process.env.ADDON);
const withContext = process.argv.at(-1) === "true";
let collected = 0;
const registry = new FinalizationRegistry(() => collected++);
for (let i = 0; i < 100; i++) registry.register(addon.make(withContext), i);
for (let k = 0; k < 5; k++) {
  globalThis.gc();
  await new Promise((r) => setTimeout(r, 20));
}
console.log(`async context ${withContext}: ${collected}/100 collected, ${addon.count()}/100 finalized`);
