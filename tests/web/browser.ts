/**
 * Debian's Chromium driven by playwright-core (never a downloaded browser), with the flags from STACK-NOTES:
 * headless, no sandbox (root), fake media UI and device, the microphone fed from a WAV played once
 * (`%noloop`), autoplay allowed. Screenshots go to .test-artifacts/ (gitignored).
 */
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
const ROOT = new URL("../..", import.meta.url).pathname;
export const ARTIFACTS = `${ROOT}.test-artifacts`;

export function chromiumAvailable(): boolean {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
}

export interface BrowserHandle {
  browser: Browser;
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchChromium(
  opts: { micWav?: string; viewport?: { width: number; height: number } } = {},
) {
  const args = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    // No sound card on CI machines: play into nothing, WebRTC stats still count what arrives.
    "--mute-audio",
  ];
  if (opts.micWav) args.push(`--use-file-for-fake-audio-capture=${opts.micWav}%noloop`);
  // launch() gives every run a fresh temporary profile (Playwright refuses an explicit --user-data-dir here).
  const browser = await chromium.launch({ executablePath: CHROMIUM, args, headless: true, timeout: 60_000 });
  const context = await browser.newContext({
    viewport: opts.viewport ?? { width: 1200, height: 860 },
    permissions: ["microphone"],
  });
  return {
    browser,
    context,
    async close() {
      await context.close().catch(() => {});
      await browser.close().catch(() => {});
    },
  } satisfies BrowserHandle;
}

/** Save a full-page screenshot under .test-artifacts/ and return its path. */
export async function artifact(page: Page, name: string): Promise<string> {
  await Deno.mkdir(ARTIFACTS, { recursive: true });
  const path = `${ARTIFACTS}/${name.replace(/[^A-Za-z0-9_.-]+/g, "_")}.png`;
  await page.screenshot({ path, fullPage: true }).catch(() => {});
  return path;
}
