/// <reference lib="dom" />
/** Tiny DOM helpers: no framework, just typed element creation and lookups. */

type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;
type Child = Node | string | null | undefined | false;

/** h("button", {class: "x", onclick: fn}, "text") */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), v as EventListener);
    } else if (v === true) {
      el.setAttribute(k, "");
    } else {
      el.setAttribute(k, String(v));
    }
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/** The element with this id, typed; throws when the page shell is missing it (a build error, not a user one). */
export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page element #${id} missing`);
  return el as T;
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

/** "12:03:04" local wall-clock time. */
export function clock(d: Date = new Date()): string {
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

/** 83_500 ms → "1:23.5" */
export function mmss(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  const m = Math.floor(s / 60);
  return `${m}:${(s - m * 60).toFixed(1).padStart(4, "0")}`;
}

/** Offer a Blob as a file download. */
export function saveBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Announce a message to screen readers and show it in the status line. */
let announceTimer: ReturnType<typeof setTimeout> | undefined;

export function announce(text: string, kind: "info" | "error" = "info"): void {
  const el = document.getElementById("status-line");
  if (!el) return;
  el.textContent = text;
  el.dataset.kind = kind;
  // Informational notes fade after a few seconds; errors stay until the next message.
  clearTimeout(announceTimer);
  if (kind === "info") {
    announceTimer = setTimeout(() => {
      if (el.textContent === text) el.textContent = "";
    }, 5000);
  }
}
