/**
 * A safe SSML subset: parsed, validated and normalised into plain-text runs (with a speaking rate) and breaks,
 * which each engine renders itself (text + silence). User markup never reaches an engine.
 *
 * Accepted: `<speak>` (root; `version`, `xmlns`, `xml:lang` ignored), `<break time="500ms|1.5s"
 * strength="none|x-weak|weak|medium|strong|x-strong"/>`, `<prosody rate="x-slow|slow|medium|fast|x-fast|
 * default|80%|+20%|-10%|1.5">`, `<say-as interpret-as="characters|digits">`, `<sub alias="…">`, and the
 * entities &amp; &lt; &gt; &quot; &apos; &#N; &#xH;. Everything else — other tags or attributes, unclosed or
 * mismatched tags, comments, CDATA, DOCTYPE, processing instructions, control characters, prosody nested deeper
 * than `maxProsodyDepth`, more than `maxBreaks` breaks, a break longer than `maxBreakMs`, digit runs longer than
 * `maxDigits` — is an `SsmlError` with the character position in the input.
 *
 * A hand-written scanner rather than an XML library: the accepted language is tiny, and a whitelist scanner makes
 * "nothing else gets through" (entities expansion, DTDs, namespaces) true by construction, with exact positions.
 */
import { chunkText } from "./tts_text.ts";

export class SsmlError extends Error {
  readonly code = "invalid_ssml";
  constructor(message: string, readonly position: number) {
    super(`${message} (at character ${position})`);
    this.name = "SsmlError";
  }
}

export interface SsmlLimits {
  maxLength: number;
  maxBreaks: number;
  maxBreakMs: number;
  maxProsodyDepth: number;
  /** Longest run of digits in the text (engines read huge numbers slowly or not at all). */
  maxDigits: number;
  minRate: number;
  maxRate: number;
}

export const DEFAULT_SSML_LIMITS: SsmlLimits = {
  maxLength: 100_000,
  maxBreaks: 200,
  maxBreakMs: 10_000,
  maxProsodyDepth: 4,
  maxDigits: 30,
  minRate: 0.5,
  maxRate: 2.0,
};

export type SsmlSegment =
  | { kind: "text"; text: string; rate: number }
  | { kind: "break"; ms: number };

export interface SsmlDocument {
  segments: SsmlSegment[];
  /** The text runs joined by single spaces: what the listener hears, for transcripts and telop. */
  text: string;
}

const BREAK_STRENGTH_MS: Record<string, number> = {
  "none": 0,
  "x-weak": 100,
  "weak": 250,
  "medium": 400,
  "strong": 700,
  "x-strong": 1000,
};
const RATE_WORDS: Record<string, number> = {
  "x-slow": 0.5,
  "slow": 0.75,
  "medium": 1,
  "default": 1,
  "fast": 1.3,
  "x-fast": 1.7,
};
const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
const ATTRS: Record<string, readonly string[]> = {
  "speak": ["version", "xmlns", "xml:lang"],
  "break": ["time", "strength"],
  "prosody": ["rate"],
  "say-as": ["interpret-as"],
  "sub": ["alias"],
};

interface Frame {
  name: string;
  pos: number;
  rate: number;
  // say-as / sub collect their text and emit it when they close
  collect?: { text: string; interpretAs?: string; alias?: string };
}

/** Parses and validates an SSML document; throws SsmlError. */
export function parseSsml(input: string, limits: Partial<SsmlLimits> = {}): SsmlDocument {
  const lim = { ...DEFAULT_SSML_LIMITS, ...limits };
  if (input.length > lim.maxLength) throw new SsmlError(`SSML longer than ${lim.maxLength} characters`, 0);
  const segments: SsmlSegment[] = [];
  const stack: Frame[] = [];
  let breaks = 0, prosodyDepth = 0, sawRoot = false, i = 0;

  const emitText = (text: string, rate: number) => {
    const last = segments[segments.length - 1];
    if (last?.kind === "text" && last.rate === rate) last.text += text;
    else segments.push({ kind: "text", text, rate });
  };
  const addText = (text: string, pos: number) => {
    const top = stack[stack.length - 1];
    if (!top) {
      if (text.trim()) throw new SsmlError("text outside <speak>", pos);
      return;
    }
    if (top.collect) top.collect.text += text;
    else emitText(text, top.rate);
  };

  while (i < input.length) {
    const lt = input.indexOf("<", i);
    const end = lt < 0 ? input.length : lt;
    if (end > i) {
      checkDigits(input.slice(i, end), lim, i);
      addText(decodeText(input, i, end), i);
    }
    if (lt < 0) break;
    i = lt;
    if (input.startsWith("<!--", i)) throw new SsmlError("comments are not allowed", i);
    if (input.startsWith("<![CDATA[", i)) throw new SsmlError("CDATA sections are not allowed", i);
    if (input.startsWith("<!", i)) throw new SsmlError("DOCTYPE and declarations are not allowed", i);
    if (input.startsWith("<?", i)) throw new SsmlError("processing instructions are not allowed", i);
    const tag = scanTag(input, i);
    const top = stack[stack.length - 1];
    if (tag.closing) {
      if (!top || top.name !== tag.name) {
        throw new SsmlError(
          top ? `</${tag.name}> does not close <${top.name}>` : `unexpected </${tag.name}>`,
          i,
        );
      }
      stack.pop();
      if (tag.name === "prosody") prosodyDepth--;
      if (top.collect) {
        const rendered = renderCollected(top, lim, tag.pos);
        const parent = stack[stack.length - 1];
        if (parent?.collect) parent.collect.text += rendered;
        else emitText(` ${rendered} `, top.rate);
      }
    } else {
      if (!(tag.name in ATTRS)) throw new SsmlError(`unsupported element <${tag.name}>`, i);
      for (const a of Object.keys(tag.attrs)) {
        if (!ATTRS[tag.name].includes(a)) {
          throw new SsmlError(`unsupported attribute ${a} on <${tag.name}>`, i);
        }
      }
      if (tag.name === "speak") {
        if (stack.length || sawRoot) throw new SsmlError("<speak> must be the single root element", i);
        sawRoot = true;
        const lang = tag.attrs["xml:lang"];
        if (lang !== undefined && !/^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$/.test(lang)) {
          throw new SsmlError(`bad xml:lang "${lang}"`, i);
        }
        if (!tag.selfClosing) stack.push({ name: "speak", pos: i, rate: 1 });
      } else if (!top) {
        throw new SsmlError(`<${tag.name}> outside <speak>`, i);
      } else if (top.collect) {
        throw new SsmlError(`<${tag.name}> is not allowed inside <${top.name}>`, i);
      } else if (tag.name === "break") {
        if (++breaks > lim.maxBreaks) throw new SsmlError(`more than ${lim.maxBreaks} breaks`, i);
        const ms = breakMs(tag.attrs, lim, i);
        if (!tag.selfClosing) {
          if (input[tag.end] !== "<") throw new SsmlError("<break> must be empty", tag.end);
          const close = scanTag(input, tag.end);
          if (!close.closing || close.name !== "break") throw new SsmlError("<break> must be empty", tag.end);
          tag.end = close.end;
        }
        if (ms > 0) segments.push({ kind: "break", ms });
      } else if (tag.name === "prosody") {
        if (++prosodyDepth > lim.maxProsodyDepth) {
          throw new SsmlError(`<prosody> nested deeper than ${lim.maxProsodyDepth}`, i);
        }
        const rate = prosodyRate(tag.attrs.rate, top.rate, lim, i);
        if (tag.selfClosing) prosodyDepth--;
        else stack.push({ name: "prosody", pos: i, rate });
      } else if (tag.name === "say-as") {
        const how = tag.attrs["interpret-as"];
        if (how !== "characters" && how !== "digits") {
          throw new SsmlError(`say-as interpret-as must be "characters" or "digits"`, i);
        }
        if (!tag.selfClosing) {
          stack.push({ name: "say-as", pos: i, rate: top.rate, collect: { text: "", interpretAs: how } });
        }
      } else if (tag.name === "sub") {
        const alias = tag.attrs.alias;
        if (alias === undefined || !alias.trim()) throw new SsmlError("<sub> needs a non-empty alias", i);
        checkDigits(alias, lim, i);
        if (!tag.selfClosing) {
          stack.push({ name: "sub", pos: i, rate: top.rate, collect: { text: "", alias } });
        } else emitText(` ${alias} `, top.rate);
      }
    }
    i = tag.end;
  }
  if (stack.length) {
    throw new SsmlError(`<${stack[stack.length - 1].name}> is not closed`, stack[stack.length - 1].pos);
  }
  if (!sawRoot) throw new SsmlError("missing <speak> root element", 0);

  const out: SsmlSegment[] = [];
  for (const s of segments) {
    if (s.kind === "break") {
      const last = out[out.length - 1];
      if (last?.kind === "break") last.ms = Math.min(lim.maxBreakMs, last.ms + s.ms);
      else out.push({ ...s });
      continue;
    }
    const text = s.text.replace(/\s+/g, " ").trim();
    if (!text) continue;
    out.push({ kind: "text", text, rate: s.rate });
  }
  return { segments: out, text: out.flatMap((s) => s.kind === "text" ? [s.text] : []).join(" ") };
}

function checkDigits(text: string, lim: SsmlLimits, pos: number): void {
  let run = 0;
  for (let k = 0; k < text.length; k++) {
    const c = text.charCodeAt(k);
    run = c >= 48 && c <= 57 ? run + 1 : 0;
    if (run > lim.maxDigits) {
      throw new SsmlError(`number with more than ${lim.maxDigits} digits`, pos + k - run + 1);
    }
  }
}

function renderCollected(f: Frame, lim: SsmlLimits, pos: number): string {
  const c = f.collect!;
  if (c.alias !== undefined) return c.alias;
  const t = c.text.replace(/\s+/g, " ").trim();
  if (c.interpretAs === "digits") {
    if (!/^[0-9 ]*$/.test(t)) throw new SsmlError(`say-as digits contains non-digits`, f.pos);
    return [...t.replace(/ /g, "")].join(" ");
  }
  if ([...t].length > lim.maxDigits * 10) throw new SsmlError("say-as characters text too long", pos);
  return [...t.replace(/ /g, "")].join(" ");
}

function breakMs(attrs: Record<string, string>, lim: SsmlLimits, pos: number): number {
  if (attrs.time !== undefined) {
    const m = attrs.time.trim().match(/^([0-9]{1,7}(?:\.[0-9]{1,3})?)(ms|s)$/);
    if (!m) throw new SsmlError(`bad break time "${attrs.time}" (use e.g. 500ms or 1.5s)`, pos);
    const ms = Number(m[1]) * (m[2] === "s" ? 1000 : 1);
    if (ms > lim.maxBreakMs) throw new SsmlError(`break longer than ${lim.maxBreakMs} ms`, pos);
    return Math.round(ms);
  }
  if (attrs.strength !== undefined) {
    const ms = BREAK_STRENGTH_MS[attrs.strength];
    if (ms === undefined) throw new SsmlError(`bad break strength "${attrs.strength}"`, pos);
    return ms;
  }
  return BREAK_STRENGTH_MS.medium;
}

function prosodyRate(value: string | undefined, parent: number, lim: SsmlLimits, pos: number): number {
  if (value === undefined) return parent;
  const v = value.trim();
  let rate: number;
  let m: RegExpMatchArray | null;
  if (v in RATE_WORDS) rate = RATE_WORDS[v];
  else if ((m = v.match(/^([+-])([0-9]{1,3}(?:\.[0-9]{1,2})?)%$/))) {
    rate = parent * (1 + (m[1] === "-" ? -1 : 1) * Number(m[2]) / 100);
  } else if ((m = v.match(/^([0-9]{1,3}(?:\.[0-9]{1,2})?)%$/))) rate = Number(m[1]) / 100;
  else if ((m = v.match(/^([0-9](?:\.[0-9]{1,3})?)$/))) rate = Number(m[1]);
  else throw new SsmlError(`bad prosody rate "${value}"`, pos);
  rate = Math.round(rate * 1000) / 1000;
  if (!(rate >= lim.minRate && rate <= lim.maxRate)) {
    throw new SsmlError(`prosody rate ${rate} outside ${lim.minRate}–${lim.maxRate}`, pos);
  }
  return rate;
}

interface Tag {
  name: string;
  closing: boolean;
  selfClosing: boolean;
  attrs: Record<string, string>;
  pos: number;
  end: number;
}

const NAME = /[A-Za-z][A-Za-z0-9_.:-]*/y;
const SPACE = /[ \t\r\n]*/y;

function scanTag(s: string, pos: number): Tag {
  let i = pos + 1;
  const closing = s[i] === "/";
  if (closing) i++;
  NAME.lastIndex = i;
  const nm = NAME.exec(s);
  if (!nm) throw new SsmlError("bad tag", pos);
  const name = nm[0];
  i = NAME.lastIndex;
  const attrs: Record<string, string> = Object.create(null);
  for (;;) {
    SPACE.lastIndex = i;
    SPACE.exec(s);
    const spaced = SPACE.lastIndex > i;
    i = SPACE.lastIndex;
    if (i >= s.length) throw new SsmlError(`unterminated <${name}`, pos);
    if (s[i] === ">") return { name, closing, selfClosing: false, attrs, pos, end: i + 1 };
    if (s.startsWith("/>", i)) {
      if (closing) throw new SsmlError("bad closing tag", pos);
      return { name, closing, selfClosing: true, attrs, pos, end: i + 2 };
    }
    if (closing || !spaced) throw new SsmlError(`bad tag <${name}`, i);
    NAME.lastIndex = i;
    const an = NAME.exec(s);
    if (!an) throw new SsmlError(`bad attribute in <${name}>`, i);
    i = NAME.lastIndex;
    SPACE.lastIndex = i;
    SPACE.exec(s);
    i = SPACE.lastIndex;
    if (s[i] !== "=") throw new SsmlError(`attribute ${an[0]} needs a value`, i);
    SPACE.lastIndex = i + 1;
    SPACE.exec(s);
    i = SPACE.lastIndex;
    const q = s[i];
    if (q !== '"' && q !== "'") throw new SsmlError(`attribute ${an[0]} value must be quoted`, i);
    const close = s.indexOf(q, i + 1);
    if (close < 0) throw new SsmlError(`unterminated attribute ${an[0]}`, i);
    const raw = s.slice(i + 1, close);
    const lt = raw.indexOf("<");
    if (lt >= 0) throw new SsmlError(`"<" in attribute ${an[0]}`, i + 1 + lt);
    if (an[0] in attrs) throw new SsmlError(`duplicate attribute ${an[0]}`, i);
    if (raw.length > 1000) throw new SsmlError(`attribute ${an[0]} too long`, i);
    attrs[an[0]] = decodeText(s, i + 1, close);
    i = close + 1;
  }
}

/** Decodes entities in s[from, to); rejects unknown entities, bare "&" and control characters. */
function decodeText(s: string, from: number, to: number): string {
  let out = "";
  let i = from;
  while (i < to) {
    const c = s.charCodeAt(i);
    if (c === 0x26) {
      const semi = s.indexOf(";", i);
      if (semi < 0 || semi >= to || semi - i > 12) throw new SsmlError('bare "&" (write &amp;)', i);
      const body = s.slice(i + 1, semi);
      let cp: number | undefined;
      if (/^#[0-9]{1,7}$/.test(body)) cp = Number(body.slice(1));
      else if (/^#x[0-9A-Fa-f]{1,6}$/.test(body)) cp = parseInt(body.slice(2), 16);
      if (cp !== undefined) {
        if (!isAllowedChar(cp)) throw new SsmlError(`character reference &${body}; is not allowed`, i);
        out += String.fromCodePoint(cp);
      } else if (body in ENTITIES) out += ENTITIES[body];
      else throw new SsmlError(`unknown entity &${body};`, i);
      i = semi + 1;
      continue;
    }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < to) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        out += s[i] + s[i + 1];
        i += 2;
        continue;
      }
    }
    if (!isAllowedChar(c)) {
      throw new SsmlError(`character U+${c.toString(16).padStart(4, "0")} is not allowed`, i);
    }
    out += s[i];
    i++;
  }
  return out;
}

// XML 1.0 Char production, minus C1 controls
function isAllowedChar(cp: number): boolean {
  if (cp === 0x9 || cp === 0xa || cp === 0xd) return true;
  if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return false;
  if (cp >= 0xd800 && cp <= 0xdfff) return false;
  if (cp === 0xfffe || cp === 0xffff) return false;
  return cp <= 0x10ffff;
}

/** Escapes text for XML. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(
    /'/g,
    "&apos;",
  );
}

/** A regenerated, minimal SSML document for engines that read SSML themselves (never the user's markup). */
export function toSafeSsml(doc: SsmlDocument): string {
  const parts = doc.segments.map((s) =>
    s.kind === "break"
      ? `<break time="${s.ms}ms"/>`
      : s.rate === 1
      ? escapeXml(s.text)
      : `<prosody rate="${Math.round(s.rate * 100)}%">${escapeXml(s.text)}</prosody>`
  );
  return `<speak>${parts.join(" ")}</speak>`;
}

/**
 * Splits a document into chunks for long jobs: at segment boundaries (never inside markup — the markup is
 * gone), long text runs cut into sentence chunks by `chunkText`. Each chunk has at most `maxChars` characters of
 * text; a break stays with the text before it.
 */
export function chunkSsml(doc: SsmlDocument, maxChars = 300): SsmlSegment[][] {
  const pieces: SsmlSegment[] = [];
  for (const s of doc.segments) {
    if (s.kind === "break") pieces.push(s);
    else {for (
        const t of chunkText(s.text, { maxChars, firstMaxChars: maxChars, mergeChars: 0, lead: false })
      ) {
        pieces.push({ kind: "text", text: t, rate: s.rate });
      }}
  }
  const chunks: SsmlSegment[][] = [];
  let cur: SsmlSegment[] = [], chars = 0;
  for (const p of pieces) {
    const n = p.kind === "text" ? p.text.length : 0;
    if (n && chars + n > maxChars && cur.some((x) => x.kind === "text")) {
      chunks.push(cur);
      cur = [];
      chars = 0;
    }
    cur.push(p);
    chars += n;
  }
  if (cur.length) chunks.push(cur);
  return chunks;
}

/**
 * The chunks of an SSML job as stored (tts_chunks.text): each one a regenerated safe document of `chunkSsml`'s
 * segments. Deterministic, so an interrupted submit can be split again the same way. Throws SsmlError.
 */
export function ssmlJobChunks(input: string, maxChars = 300): string[] {
  return chunkSsml(parseSsml(input), maxChars).map((segments) => toSafeSsml({ segments, text: "" }));
}
