/// <reference lib="dom" />
/**
 * Parley web client entry: sign-in (API key → browser token, or #token=… from the URL), hash routing between
 * the Live, History and TTS jobs views. Bundled by `deno task web:build` into web/dist/app.js.
 */
import { onAuthChange, signedIn, signInWithKey, signOut, useToken } from "./api.ts";
import { $, announce } from "./dom.ts";
import { describeError } from "./connection.ts";
import { LiveView } from "./live.ts";
import { HistoryView } from "./history.ts";
import { JobsView } from "./jobs.ts";
import { RoomView } from "./room.ts";
import { VoicePicker } from "./voices.ts";

type View = "live" | "history" | "jobs";
const VIEWS: View[] = ["live", "history", "jobs"];

function boot(): void {
  // A browser token handed over in the URL: take it, then drop it from the address bar and history.
  const m = location.hash.match(/(?:^#|&)token=([^&]+)/);
  const roomPath = location.pathname.match(/^\/rooms\/([0-9a-f-]{36})$/i);
  if (m) {
    useToken(decodeURIComponent(m[1]));
    history.replaceState(null, "", `${location.pathname}${location.search}${roomPath ? "" : "#live"}`);
  }
  if (roomPath) return bootRoom(roomPath[1]);

  const live = new LiveView();
  const hist = new HistoryView();
  const jobs = new JobsView();
  const voices = new VoicePicker();
  void voices.load();
  // For debugging from the console (and for the end-to-end test).
  (globalThis as Record<string, unknown>).parley = { live, history: hist, jobs };

  const show = () => {
    const ok = signedIn();
    $("nav").hidden = !ok;
    $("view-signin").hidden = ok;
    const want = (location.hash.slice(1) || "live") as View;
    const view: View = VIEWS.includes(want) ? want : "live";
    for (const v of VIEWS) {
      $(`view-${v}`).hidden = !ok || v !== view;
      const link = $(`nav-${v}`);
      if (v === view) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    if (!ok) return;
    document.title = `Parley · ${view === "jobs" ? "TTS jobs" : view[0].toUpperCase() + view.slice(1)}`;
    if (view === "live") void live.refreshEngines();
    if (view === "history") void hist.refresh();
    if (view === "jobs") void jobs.refresh();
  };

  $<HTMLFormElement>("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = $<HTMLInputElement>("api-key");
    const err = $("signin-error");
    err.textContent = "";
    try {
      await signInWithKey(input.value);
      input.value = "";
      announce("Signed in");
    } catch (e) {
      err.textContent = describeError(e);
    }
  });
  $("sign-out").addEventListener("click", async () => {
    await live.stop(); // while the token still works
    signOut();
  });
  onAuthChange((ok) => {
    if (!ok) {
      void live.stop();
      announce("Signed out. Sign in again to continue (browser tokens last at most an hour).");
    }
    show();
  });
  addEventListener("hashchange", () => {
    show();
    $("main").focus();
  });
  show();
}

/** `/rooms/{id}`: only the room page (captions, Listen), no navigation. */
function bootRoom(id: string): void {
  const room = new RoomView(id);
  (globalThis as Record<string, unknown>).parley = { room };
  const show = () => {
    const ok = signedIn();
    $("nav").hidden = true;
    $("view-signin").hidden = ok;
    $("view-room").hidden = !ok;
    if (ok) room.start();
    else room.stop();
  };
  $<HTMLFormElement>("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = $<HTMLInputElement>("api-key");
    try {
      await signInWithKey(input.value);
      input.value = "";
    } catch (e) {
      $("signin-error").textContent = describeError(e);
    }
  });
  onAuthChange(show);
  show();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
else boot();
