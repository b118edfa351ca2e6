import os from "node:os";
import sanitizeHtml from "sanitize-html";
import { MAX_HTML_BYTES, sanitizeMessageHtml } from "@/lib/mail/message";
import { intSetting, writeReadmeSection } from "./lib";

const RUNS = intSetting("BENCH_RUNS", 7);
const MB = 1024 * 1024;
const OLD_HTML_CAP = 10 * MB;

/* ------------------------------------------------------------------------------------------ */
/* The previous sanitiser, as it was before the patterns were rewritten                         */

const previousOptions: sanitizeHtml.IOptions = {
  allowedTags: (
    "a abbr b blockquote br caption cite code col colgroup dd del div dl dt em h1 h2 h3 h4 " +
    "h5 h6 hr i img ins li ol p pre q s small span strong sub sup table tbody td tfoot th " +
    "thead tr u ul"
  ).split(" "),
  allowedAttributes: {
    "*": ["dir", "lang", "title", "style"],
    a: ["href", "name"],
    img: ["src", "alt", "width", "height"],
    td: ["colspan", "rowspan", "align", "valign"],
    th: ["colspan", "rowspan", "align", "valign", "scope"],
  },
  allowedStyles: {
    "*": {
      color: [/^#[0-9a-f]{3,8}$/i, /^[a-z]+$/i, /^rgba?\(\s*[\d.%\s,]+\)$/i],
      "background-color": [/^#[0-9a-f]{3,8}$/i, /^[a-z]+$/i, /^rgba?\(\s*[\d.%\s,]+\)$/i],
      "font-weight": [/^(?:normal|bold|bolder|lighter|\d{3})$/i],
      "font-style": [/^(?:normal|italic|oblique)$/i],
      "font-size": [/^\d+(?:\.\d+)?(?:px|pt|em|rem|%)$/i],
      "font-family": [/^[\w\s,'"-]+$/],
      "text-align": [/^(?:left|right|center|justify)$/i],
      "text-decoration": [/^(?:none|underline|line-through)$/i],
      "line-height": [/^\d+(?:\.\d+)?(?:px|pt|em|rem|%)?$/i],
      margin: [/^(?:-?\d+(?:\.\d+)?(?:px|pt|em|rem|%)?\s*){1,4}$/i],
      padding: [/^(?:\d+(?:\.\d+)?(?:px|pt|em|rem|%)?\s*){1,4}$/i],
    },
  },
  allowedSchemes: ["http", "https", "mailto"],
  allowedSchemesByTag: { img: ["http", "https"] },
  allowProtocolRelative: false,
  disallowedTagsMode: "discard",
  nonTextTags: ["script", "style", "textarea", "option", "noscript", "title", "template"],
};

const previous = (html: string) => sanitizeHtml(html, previousOptions);
const current = (html: string) => sanitizeMessageHtml(html);

/* ------------------------------------------------------------------------------------------ */
/* Inputs                                                                                      */

/** Deterministic pseudo-random numbers, so every run sanitises the same bytes. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const WORDS = (
  "the of and to in is you that it he was for on are as with his they at be this from have " +
  "or by one had not but what all were when we there can an your which their said if do will " +
  "each about how up out them then she many some so these would other into has more her two " +
  "like him see time could no make than first been its who now people my made over did down " +
  "only way find use may water long little very after words called just where most know " +
  "spring launch offer members update release webinar customers guide workshop discount"
).split(" ");

/**
 * An email newsletter as builders emit it: nested layout tables with inline styles on nearly
 * every element, a hidden preheader, tracked links, images, buttons, a <style> block and MSO
 * conditional comments in the head, and a footer. Articles are added until `bytes` is reached.
 */
function newsletter(bytes: number): string {
  const random = seeded(42);
  const pick = <T>(list: T[]): T => list[Math.floor(random() * list.length)] as T;
  const words = (count: number) => Array.from({ length: count }, () => pick(WORDS)).join(" ");
  const sentence = () => {
    const text = words(8 + Math.floor(random() * 14));
    return `${text.charAt(0).toUpperCase()}${text.slice(1)}.`;
  };
  const tracked = (target: string) =>
    `https://click.example.com/ls/click?upn=${Math.floor(random() * 1e12).toString(36)}` +
    `&amp;u=${Math.floor(random() * 1e9)}&amp;url=${encodeURIComponent(`https://www.example.com/${target}?utm_source=newsletter&utm_medium=email&utm_campaign=weekly`)}`;
  const font = "font-family:Arial, Helvetica, sans-serif;";

  const head =
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    "<title>The weekly update</title>" +
    "<style>body{margin:0;padding:0}table{border-collapse:collapse}" +
    ".button a{display:inline-block}@media (max-width:600px){.container{width:100% !important}" +
    ".stack{display:block !important;width:100% !important}}</style>" +
    "<!--[if mso]><xml><o:OfficeDocumentSettings><o:PixelsPerInch>96</o:PixelsPerInch>" +
    "</o:OfficeDocumentSettings></xml><![endif]--></head>" +
    '<body style="margin:0;padding:0;background-color:#f4f4f4;">' +
    `<div style="display:none;font-size:1px;color:#f4f4f4;line-height:1px;max-height:0;overflow:hidden;">${sentence()}</div>` +
    '<center><table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="background-color:#f4f4f4;">' +
    '<tr><td align="center" style="padding:20px 10px;">' +
    '<!--[if mso]><table role="presentation" width="600"><tr><td><![endif]-->' +
    '<table role="presentation" class="container" width="600" cellpadding="0" cellspacing="0" border="0" style="background-color:#ffffff;">' +
    `<tr><td align="center" style="padding:24px 30px;border-bottom:1px solid #eeeeee;"><a href="${tracked("")}"><img src="https://cdn.example.com/brand/logo.png" width="180" height="48" alt="Example" style="display:block;border:0;"></a></td></tr>`;

  const article = (n: number) => {
    const paragraphs = Array.from(
      { length: 2 + Math.floor(random() * 3) },
      () =>
        `<p style="margin:0 0 12px 0;${font}font-size:15px;line-height:22px;color:#555555;">${sentence()} ${sentence()} <a href="${tracked(`articles/${n}`)}" style="color:#1a73e8;text-decoration:underline;">${words(3)}</a> ${sentence()} <strong>${words(2)}</strong> ${sentence()}</p>`,
    ).join("");
    const image = `<img src="https://cdn.example.com/newsletter/2026/article-${n}.jpg" width="540" alt="${words(4)}" style="display:block;width:100%;max-width:540px;height:auto;border:0;">`;
    const button =
      '<table role="presentation" class="button" cellpadding="0" cellspacing="0" border="0" style="margin:8px 0 0 0;"><tr>' +
      `<td align="center" bgcolor="#1a73e8" style="border-radius:4px;background-color:#1a73e8;"><a href="${tracked(`articles/${n}`)}" target="_blank" style="display:inline-block;padding:12px 24px;${font}font-size:16px;color:#ffffff;text-decoration:none;font-weight:bold;">Read more</a></td>` +
      "</tr></table>";
    const twoColumns =
      n % 3 === 0
        ? '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0"><tr>' +
          `<td class="stack" width="50%" valign="top" style="padding:0 10px 0 0;${font}font-size:14px;line-height:20px;color:#333333;">${sentence()}</td>` +
          `<td class="stack" width="50%" valign="top" style="padding:0 0 0 10px;${font}font-size:14px;line-height:20px;color:#333333;">${sentence()}</td>` +
          "</tr></table>"
        : "";
    return (
      `<tr><td style="padding:24px 30px;${font}">` +
      `<h2 style="margin:0 0 10px 0;${font}font-size:22px;line-height:28px;color:#222222;font-weight:bold;">${words(6)}</h2>` +
      `${image}<div style="padding:12px 0 0 0;">${paragraphs}${twoColumns}</div>${button}` +
      "</td></tr>"
    );
  };

  const footer =
    `<tr><td align="center" style="padding:24px 30px;background-color:#fafafa;${font}font-size:12px;line-height:18px;color:#999999;">` +
    `You are receiving this because you subscribed at example.com.<br><a href="${tracked("unsubscribe")}" style="color:#999999;text-decoration:underline;">Unsubscribe</a> · <a href="${tracked("preferences")}" style="color:#999999;text-decoration:underline;">Preferences</a><br>Example Ltd, 1 Example Street, Exampletown</td></tr>` +
    "</table><!--[if mso]></td></tr></table><![endif]--></td></tr></table></center></body></html>";

  let body = "";
  for (let n = 1; ; n++) {
    const next = article(n);
    if (Buffer.byteLength(head + body + next + footer) > bytes) break;
    body += next;
  }
  return head + body + footer;
}

/** `unit` repeated to `bytes`, after `head`. */
function repeat(unit: string, bytes: number, head = ""): string {
  return head + unit.repeat(Math.max(1, Math.floor((bytes - head.length) / unit.length)));
}

type Shape = {
  name: string;
  make: (bytes: number) => string;
  /** Input size for the previous sanitiser, timed once: it takes seconds, or far longer on more. */
  previousBytes?: number;
};

// Each is the costliest we found of its kind; the first two are the slowest per byte.
const HOSTILE: Shape[] = [
  {
    name: "unclosed list items, `<ul>` + `<li>x` repeated",
    make: (bytes) => repeat("<li>x", bytes, "<ul>"),
  },
  {
    name: "unclosed cells, `<table><tr>` + `<td>x` repeated",
    make: (bytes) => repeat("<td>x", bytes, "<table><tr>"),
  },
  {
    name: "a 99-deep stack, then `</x>` repeated (no element to close)",
    make: (bytes) => repeat("</x>", bytes, "<span>".repeat(99)),
  },
  {
    name: 'tiny style attributes, `<b style="color:red">a</b>` repeated',
    make: (bytes) => repeat('<b style="color:red">a</b>', bytes),
  },
  {
    name: "style attributes of 250 declarations each, `a:b;` repeated",
    make: (bytes) => repeat(`<b style="${"a:b;".repeat(249)}">a</b>`, bytes),
  },
  {
    name: "style attributes of ten `margin:` + 90 digits + `x` each",
    make: (bytes) => repeat(`<b style="${`margin:${"1".repeat(90)}x;`.repeat(10)}">a</b>`, bytes),
    previousBytes: 4 * 1024,
  },
  {
    name: '`<p style="margin:` + 300 digits + `x">a</p>` repeated',
    make: (bytes) => repeat(`<p style="margin:${"1".repeat(300)}x">a</p>`, bytes),
    previousBytes: 1024,
  },
  {
    name: "nested `<b>` without end",
    make: (bytes) => repeat("<b>", bytes),
    previousBytes: MAX_HTML_BYTES,
  },
];

/* ------------------------------------------------------------------------------------------ */
/* Timing                                                                                      */

type Timing = { bytes: number; medianMs: number; maxMs: number; runs: number; outcome: string };

function time(sanitize: (html: string) => unknown, html: string, runs = RUNS): Timing {
  const outcomeOf = (result: unknown) =>
    typeof result === "string"
      ? "sanitised"
      : (result as { ok: boolean }).ok
        ? "sanitised"
        : "refused (nesting)";
  // A single run (the slow baselines and the 10 MB input) gets no warm-up.
  let outcome = runs > 1 ? outcomeOf(sanitize(html)) : "";
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    // CPU time, not wall time: the machine's other work must not count against the sanitiser.
    const started = process.cpuUsage();
    const result = sanitize(html);
    const spent = process.cpuUsage(started);
    samples.push((spent.user + spent.system) / 1000);
    outcome = outcomeOf(result);
  }
  samples.sort((a, b) => a - b);
  return {
    bytes: Buffer.byteLength(html),
    medianMs: samples[Math.floor(samples.length / 2)] ?? 0,
    maxMs: samples[samples.length - 1] ?? 0,
    runs,
    outcome,
  };
}

const mbPerSecond = (t: Timing) => t.bytes / MB / (t.medianMs / 1000);
const size = (bytes: number) =>
  bytes >= MB
    ? `${(bytes / MB).toFixed(bytes % MB === 0 ? 0 : 2)} MB`
    : `${Math.round(bytes / 1024)} KB`;
const ms = (value: number) =>
  value >= 100 ? value.toFixed(0) : value >= 1 ? value.toFixed(1) : value.toFixed(3);
const rate = (t: Timing) => {
  const value = mbPerSecond(t);
  return value >= 10 ? value.toFixed(0) : value >= 0.1 ? value.toFixed(1) : value.toPrecision(2);
};

/* ------------------------------------------------------------------------------------------ */
/* Main                                                                                        */

type Row = { input: string; mine: Timing; theirs: Timing | null };

function cell(t: Timing | null): string {
  if (t === null) return "—";
  const refused = t.outcome === "sanitised" ? "" : `, ${t.outcome}`;
  return `${rate(t)} MB/s (${ms(t.medianMs)} ms for ${size(t.bytes)}${refused})`;
}

function main() {
  // Both sanitisers compiled and warm before the first figure.
  const warm = newsletter(100 * 1024);
  for (let i = 0; i < 5; i++) {
    current(warm);
    previous(warm);
    current(HOSTILE[0]?.make(64 * 1024) ?? "");
  }
  const rows: Row[] = [];
  for (const bytes of [100 * 1024, MAX_HTML_BYTES]) {
    const html = newsletter(bytes);
    rows.push({
      input: `newsletter, ${size(Buffer.byteLength(html))}`,
      mine: time(current, html),
      theirs: time(previous, html),
    });
    console.log(rows.at(-1));
  }

  const atCap: Array<{ shape: Shape; timing: Timing }> = [];
  for (const shape of HOSTILE) {
    const html = shape.make(MAX_HTML_BYTES);
    const mine = time(current, html);
    const smaller = shape.previousBytes === undefined ? html : shape.make(shape.previousBytes);
    const theirs = time(previous, smaller, shape.previousBytes === undefined ? RUNS : 1);
    rows.push({ input: `hostile: ${shape.name}`, mine, theirs });
    atCap.push({ shape, timing: mine });
    console.log(rows.at(-1));
  }

  const sanitised = atCap.filter((entry) => entry.timing.outcome === "sanitised");
  const worst = sanitised.reduce((a, b) => (b.timing.medianMs > a.timing.medianMs ? b : a));
  // The same worst shape at the old 10 MB cap, once: what the cap had allowed.
  const atOldCap = time(current, worst.shape.make(OLD_HTML_CAP), 1);
  console.log({ worst: worst.shape.name, atOldCap });
  writeReadmeSection("sanitize", render(rows, worst, atOldCap));
  console.log("Written to bench/README.md.");
}

function render(rows: Row[], worst: { shape: Shape; timing: Timing }, atOldCap: Timing): string {
  const table = [
    "| input | `sanitizeMessageHtml` | previous sanitiser |",
    "| --- | --- | --- |",
    ...rows.map((r) => `| ${r.input} | ${cell(r.mine)} | ${cell(r.theirs)} |`),
  ];
  const cpu = os.cpus()[0]?.model.trim() ?? "unknown CPU";
  const load = os
    .loadavg()
    .map((value) => value.toFixed(1))
    .join(" ");
  return [
    "## Sanitiser (`bench/sanitize.ts`)",
    "",
    `MB/s of the validator's HTML step, \`sanitizeMessageHtml\`, on a generated email newsletter (nested layout tables with inline styles on nearly every element, tracked links, images, buttons, a \`<style>\` block and MSO conditional comments) and on the most expensive hostile HTML we could construct, each at the HTML cap (${size(MAX_HTML_BYTES)}). Baseline, in the same run: the previous sanitiser (its style patterns, no cap on a style attribute or value, no nesting bound) on the same input, or, where that would take minutes or more, on a smaller input of the same shape, timed once (the size is in its cell). Median of ${RUNS} runs after a warm-up, in CPU time of the process (user + system: the 2 cores are shared with other work, which wall time would count; the call is synchronous, so on an idle core its wall time is about the same).`,
    "",
    ...table,
    "",
    `- Slowest input at the cap: ${worst.shape.name}, ${ms(worst.timing.medianMs)} ms median and ${ms(worst.timing.maxMs)} ms at worst over ${worst.timing.runs} runs, for ${size(worst.timing.bytes)}; ${worst.timing.maxMs < 500 ? "under" : "**not** under"} 500 ms. The same input at the old cap of 10 MB: ${(atOldCap.medianMs / 1000).toFixed(1)} s of CPU.`,
    "",
    `- Command: \`npx tsx bench/sanitize.ts\` (BENCH_RUNS=${RUNS})`,
    `- Machine: nproc ${os.cpus().length} (${cpu}), Node ${process.version}, ${os.platform()} ${os.release()}; load average at the end of the run ${load}`,
    `- Run: ${new Date().toISOString()}`,
  ].join("\n");
}

main();
