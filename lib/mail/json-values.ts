/**
 * Whether JSON text holds more than `max` arrays, objects and items after the first (each
 * `[`, `{` or `,` outside a string), without parsing it: linear, stops at the limit, and skips
 * each string with indexOf, so a long text field costs next to nothing.
 */
export function hasMoreJsonValues(text: string, max: number): boolean {
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // To the closing quote: one not preceded by an odd run of backslashes.
      let end = text.indexOf('"', i + 1);
      while (end !== -1) {
        let slashes = 0;
        while (text.charCodeAt(end - 1 - slashes) === 0x5c) slashes++;
        if (slashes % 2 === 0) break;
        end = text.indexOf('"', end + 1);
      }
      if (end === -1) return false; // unterminated: JSON.parse refuses it at once
      i = end;
    } else if ((c === 0x2c || c === 0x5b || c === 0x7b) && ++count > max) {
      return true;
    }
  }
  return false;
}
