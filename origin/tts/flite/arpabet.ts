/**
 * flite's phone set is CMU ARPAbet (lower case, stress digits stripped) plus `pau`. Each phone is mapped to
 * IPA so that the shared IPA → viseme classes in ../visemes.ts decide the mouth shape.
 */
import type { Viseme } from "../../../protocol/session_messages.ts";
import { visemeOf } from "../visemes.ts";

const ARPABET_IPA: Record<string, string> = {
  aa: "ɑ",
  ae: "æ",
  ah: "ʌ",
  ao: "ɔ",
  aw: "aʊ",
  ax: "ə",
  axr: "ɚ",
  ay: "aɪ",
  eh: "ɛ",
  er: "ɝ",
  ey: "eɪ",
  ih: "ɪ",
  ix: "ɨ",
  iy: "i",
  ow: "oʊ",
  oy: "ɔɪ",
  uh: "ʊ",
  uw: "u",
  ux: "ʉ",
  b: "b",
  ch: "tʃ",
  d: "d",
  dh: "ð",
  dx: "ɾ",
  el: "l̩",
  em: "m̩",
  en: "n̩",
  f: "f",
  g: "ɡ",
  hh: "h",
  jh: "dʒ",
  k: "k",
  l: "l",
  m: "m",
  n: "n",
  ng: "ŋ",
  nx: "ɾ̃",
  p: "p",
  q: "ʔ",
  r: "ɹ",
  s: "s",
  sh: "ʃ",
  t: "t",
  th: "θ",
  v: "v",
  w: "w",
  wh: "ʍ",
  y: "j",
  z: "z",
  zh: "ʒ",
};

/** ARPAbet phone → IPA ("" for pauses and unknown phones). */
export function arpabetToIpa(phone: string): string {
  return ARPABET_IPA[phone.toLowerCase().replace(/[0-9]/g, "")] ?? "";
}

/** ARPAbet phone → viseme (pauses: rest). */
export function visemeOfArpabet(phone: string): Viseme {
  const ipa = arpabetToIpa(phone);
  return ipa ? visemeOf(ipa) : "rest";
}
