/// <reference lib="dom" />
/**
 * A person talking into the web page is understood with the default settings: real Chromium (Debian's) whose
 * fake microphone plays human read speech (pocketsphinx-testdata's LibriVox recordings, the package's own
 * transcripts), a real Parley process with `ASR_ENGINE=auto` (the bundled Moonshine model), the Live view in
 * Transcribe mode. The page names the recognizer, shows partial captions, and its confirmed captions match
 * the transcripts at WER <= 20 %.
 */
import assert from "node:assert/strict";
import { artifact, chromiumAvailable, launchChromium } from "./web/browser.ts";
import { type ProcessStack, startProcessStack } from "./web/stack.ts";
import { librivoxUtterances, readWav16k } from "../origin/asr/sphinx/sphinx_testdata.ts";
import { encodeWav } from "../origin/pipeline/wav.ts";
import { concat, silence } from "../origin/pipeline/host_double.ts";
import { floatToInt16, int16ToFloat, resampleAll } from "../lib/audio/resampler.ts";
import { editDistance } from "../origin/asr/error_rate.ts";

const words = (s: string) => s.toLowerCase().replace(/[^a-z' ]+/g, " ").split(/\s+/).filter(Boolean);

/** Three recordings at 48 kHz with a second of silence before each and after the last. */
async function micWav(): Promise<{ path: string; ref: string }> {
  const utts = librivoxUtterances().slice(0, 3);
  const gap = silence(1000);
  const pcm = concat(
    ...utts.flatMap((
      u,
    ) => [gap, floatToInt16(resampleAll(int16ToFloat(readWav16k(u.path)), 16_000, 48_000))]),
    gap,
    gap,
  );
  const path = await Deno.makeTempFile({ suffix: ".wav" });
  await Deno.writeFile(path, encodeWav(pcm, 48_000));
  return { path, ref: utts.map((u) => u.ref).join(" ") };
}

Deno.test({
  name: "web client in Chromium: a human voice is understood with the default recognizer (moonshine)",
  ignore: !chromiumAvailable(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const mic = await micWav();
    const stack: ProcessStack = await startProcessStack({ ASR_ENGINE: "auto", MEDIA_TIMEOUT_MS: "120000" });
    const browser = await launchChromium({ micWav: mic.path });
    const page = await browser.context.newPage();
    page.setDefaultTimeout(30_000);
    try {
      await page.goto(stack.url);
      await page.getByLabel("API key").fill(stack.adminKey);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.locator("#view-live").waitFor({ state: "visible" });
      await page.locator("#recognizer", { hasText: "moonshine" }).waitFor();
      assert.equal(
        await page.locator("#recognizer").textContent(),
        "Speech recognition: moonshine, understands human English.",
      );
      await page.getByLabel("Mode").selectOption("transcribe");
      await page.getByRole("button", { name: "Start" }).click();
      await page.locator('#conn-state[data-state="connected"]').waitFor({ timeout: 30_000 });
      // the three recordings last ~15 s; their confirmed captions follow each one's end
      await page.waitForFunction(
        (n) =>
          (globalThis as unknown as { parley: { live: { counts: { confirmed: number } } } }).parley.live
            .counts
            .confirmed >= n,
        3,
        { timeout: 60_000, polling: 250 },
      );
      const partials = await page.evaluate(() =>
        (globalThis as unknown as { parley: { live: { counts: { partial: number } } } }).parley.live.counts
          .partial
      );
      const heard = (await page.locator("#confirmed .text").allTextContents()).join(" ");
      const ref = words(mic.ref);
      const wer = editDistance(ref, words(heard)) / ref.length;
      console.log(`confirmed captions: "${heard}"; WER ${(wer * 100).toFixed(1)} %; ${partials} partials`);
      assert.ok(partials >= 1, "partial captions while speaking");
      assert.ok(wer <= 0.2, `WER ${(wer * 100).toFixed(1)} % for "${heard}" (ref "${mic.ref}")`);
    } catch (e) {
      console.error(`screenshot: ${await artifact(page, "web_human_voice")}`);
      console.error(stack.stderr().slice(-3000));
      throw e;
    } finally {
      await browser.close();
      await stack.close();
      await Deno.remove(mic.path).catch(() => {});
    }
  },
});
