import { describe, expect, it } from "vitest";
import { hasMoreJsonValues } from "./json-values";

describe("hasMoreJsonValues", () => {
  it("counts arrays, objects and items outside strings only", () => {
    expect(hasMoreJsonValues(JSON.stringify({ a: [1, 2], b: {} }), 5)).toBe(false);
    expect(hasMoreJsonValues(JSON.stringify({ a: [1, 2, 3], b: {} }), 5)).toBe(true);
    expect(hasMoreJsonValues(JSON.stringify({ text: ",[{".repeat(10_000) }), 1)).toBe(false);
  });

  it("ends a string at a quote after an even run of backslashes, not after an odd one", () => {
    // The text `a\` then `,`: its closing quote follows an escaped backslash.
    expect(hasMoreJsonValues(JSON.stringify({ t: "a\\" }) + ",".repeat(5), 4)).toBe(true);
    // An escaped quote keeps the string open: the commas inside are text.
    expect(hasMoreJsonValues(JSON.stringify({ t: `"${",".repeat(10)}` }), 4)).toBe(false);
  });

  it("refuses a body of 21 MB of tiny values at the limit, and leaves unterminated text to JSON.parse", () => {
    expect(hasMoreJsonValues(`[${"[],".repeat(7_000_000)}[]]`, 1_000)).toBe(true);
    expect(hasMoreJsonValues(`{"t":"${",".repeat(5_000)}`, 1_000)).toBe(false);
  });
});
