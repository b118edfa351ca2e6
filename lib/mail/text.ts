// Text measures for header values and bodies, shared by the address parser and the validator.

/** C0 controls (tab, CR and LF included), DEL, C1 controls and the Unicode line separators. */
export function isHeaderControl(code: number): boolean {
  return code < 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x2028 || code === 0x2029;
}

export function hasHeaderControl(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    if (isHeaderControl(value.charCodeAt(i))) return true;
  }
  return false;
}

/** UTF-8 length, stopping early once past `limit` so a huge string costs no more than needed. */
export function utf8Length(value: string, limit = Number.POSITIVE_INFINITY): number {
  let bytes = 0;
  for (let i = 0; i < value.length && bytes <= limit; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < value.length) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

export function codePointLength(value: string): number {
  let count = 0;
  for (const _ of value) count++;
  return count;
}

export function collapseSpaces(value: string): string {
  return value.trim().replace(/\s+/g, " ");
}
