import sanitizeHtml from "sanitize-html";

// The HTML sanitiser for message bodies: an allow-list of tags, attributes and inline styles,
// with every input bounded so that parsing stays linear (bench/sanitize.ts measures it).

// Longest style attribute that is parsed at all. A longer one is dropped whole before the CSS
// parser sees it, so the parser's cost per attribute stays bounded; real mail keeps an inline
// style to a few hundred characters.
export const MAX_STYLE_ATTRIBUTE_LENGTH = 1_000;
// Longest value tried against the patterns below (a long font-family list is ~130).
export const MAX_STYLE_VALUE_LENGTH = 200;
// The HTML parser keeps its open elements in an array it shifts and searches, which costs
// time in proportion to the nesting depth at every tag: without a bound, deep nesting makes
// parsing quadratic (160,000 nested <b> took 6.7 s). Newsletter tables nest a few dozen deep.
export const MAX_HTML_DEPTH = 100;

/**
 * Anchors a style value pattern and bounds the text it runs on. Each pattern must have one
 * way at most to match any text: repeated values are separated by required whitespace or a
 * comma and no quantified part can also match what follows it, so a test is linear.
 */
function styleValue(pattern: RegExp): RegExp {
  return new RegExp(
    `^(?=[\\s\\S]{0,${MAX_STYLE_VALUE_LENGTH}}$)(?:${pattern.source})$`,
    pattern.flags,
  );
}

const COLOR = [
  styleValue(/#[0-9a-f]{3,8}/i),
  styleValue(/[a-z]{1,32}/i),
  // rgb(1, 2, 3) and rgba(1, 2, 3, 0.5), each number up to 3 digits with an optional fraction
  // and percent sign; or the space-separated rgb(1 2 3 / 50%).
  styleValue(
    /rgba?\(\s*(?:\d{1,3}(?:\.\d{1,4})?|\.\d{1,4})%?(?:\s*,\s*(?:\d{1,3}(?:\.\d{1,4})?|\.\d{1,4})%?){2,3}\s*\)/i,
  ),
  styleValue(
    /rgba?\(\s*(?:\d{1,3}(?:\.\d{1,4})?|\.\d{1,4})%?(?:\s+(?:\d{1,3}(?:\.\d{1,4})?|\.\d{1,4})%?){2}(?:\s*\/\s*(?:\d{1,3}(?:\.\d{1,4})?|\.\d{1,4})%?)?\s*\)/i,
  ),
];

/**
 * The inline style properties that pass, each with the values it accepts. Mail HTML leans on
 * inline styles; no allowed value can hold "(" except plain rgb(), so expression(), url() and
 * var() never survive.
 */
export const ALLOWED_STYLES: Record<string, RegExp[]> = {
  color: COLOR,
  "background-color": COLOR,
  "font-weight": [styleValue(/normal|bold|bolder|lighter|\d{3}/i)],
  "font-style": [styleValue(/normal|italic|oblique/i)],
  "font-size": [styleValue(/\d+(?:\.\d+)?(?:px|pt|em|rem|%)/i)],
  "font-family": [styleValue(/[\w\s,'"-]+/)],
  "text-align": [styleValue(/left|right|center|justify/i)],
  "text-decoration": [styleValue(/none|underline|line-through/i)],
  "line-height": [styleValue(/\d+(?:\.\d+)?(?:px|pt|em|rem|%)?/i)],
  // One to four lengths, whitespace between them.
  margin: [
    styleValue(/-?\d+(?:\.\d+)?(?:px|pt|em|rem|%)?(?:\s+-?\d+(?:\.\d+)?(?:px|pt|em|rem|%)?){0,3}/i),
  ],
  padding: [
    styleValue(/\d+(?:\.\d+)?(?:px|pt|em|rem|%)?(?:\s+\d+(?:\.\d+)?(?:px|pt|em|rem|%)?){0,3}/i),
  ],
};

const sanitizeOptions: sanitizeHtml.IOptions = {
  // Listed, not taken from the library defaults, so an upgrade cannot widen what passes.
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
  allowedStyles: { "*": ALLOWED_STYLES },
  // Runs on every tag before its attributes are filtered, so an over-long style attribute
  // never reaches the CSS parser.
  transformTags: {
    "*": (tagName, attribs) => {
      if ((attribs.style ?? "").length <= MAX_STYLE_ATTRIBUTE_LENGTH) return { tagName, attribs };
      const { style: _dropped, ...rest } = attribs;
      return { tagName, attribs: rest };
    },
  },
  allowedSchemes: ["http", "https", "mailto"],
  allowedSchemesByTag: { img: ["http", "https"] },
  allowProtocolRelative: false,
  disallowedTagsMode: "discard",
  // These tags' content is code or chrome, not prose: drop it along with the tag.
  nonTextTags: ["script", "style", "textarea", "option", "noscript", "title", "template"],
};

class TooDeeplyNested extends Error {}

/**
 * Sanitises message HTML, or refuses it when elements nest deeper than MAX_HTML_DEPTH.
 * The parser reports every element it opens and closes (implied ones and void elements
 * included), so the running count is the depth of its open-element list; parsing stops at
 * the first element past the bound, before the list can grow further.
 */
export function sanitizeMessageHtml(
  html: string,
): { ok: true; html: string } | { ok: false; message: string } {
  let depth = 0;
  try {
    const clean = sanitizeHtml(html, {
      ...sanitizeOptions,
      onOpenTag: () => {
        depth++;
        if (depth > MAX_HTML_DEPTH) throw new TooDeeplyNested();
      },
      onCloseTag: () => {
        depth--;
      },
    });
    return { ok: true, html: clean };
  } catch (error) {
    if (!(error instanceof TooDeeplyNested)) throw error;
    return { ok: false, message: `must not nest elements more than ${MAX_HTML_DEPTH} deep` };
  }
}
