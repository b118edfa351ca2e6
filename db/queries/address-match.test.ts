import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb } from "@/db";
import {
  mentionsAddress,
  personPattern,
  replaceMatches,
  wholeAddressPattern,
} from "./address-match";

// One pattern, read alike by JavaScript (lib/audit/redact.ts) and PostgreSQL (the queries).
const CASES: Array<{ address: string; text: string; expected: string }> = [
  { address: "bob@example.com", text: "bob@example.com", expected: "X" },
  { address: "bob@example.com", text: "BOB@Example.COM", expected: "X" },
  { address: "bob@example.com", text: "To: Bob <bob@example.com>", expected: "To: Bob <X>" },
  { address: "bob@example.com", text: '{"email":"bob@example.com"}', expected: '{"email":"X"}' },
  { address: "bob@example.com", text: "Write to bob@example.com.", expected: "Write to X." },
  {
    address: "bob@example.com",
    text: "bob@example.com,bob@example.com bob@example.com",
    expected: "X,X X",
  },
  { address: "bob@example.com", text: "jimbob@example.com", expected: "jimbob@example.com" },
  { address: "bob@example.com", text: "x.bob@example.com", expected: "x.bob@example.com" },
  { address: "bob@example.com", text: "j_bob@example.com", expected: "j_bob@example.com" },
  { address: "bob@example.com", text: "j+bob@example.com", expected: "j+bob@example.com" },
  { address: "bob@example.com", text: "j-bob@example.com", expected: "j-bob@example.com" },
  { address: "bob@example.com", text: "bob@example.com.au", expected: "bob@example.com.au" },
  { address: "bob@example.com", text: "bob@example.community", expected: "bob@example.community" },
  { address: "bob@example.com", text: "bob@example.com-x.net", expected: "bob@example.com-x.net" },
  // Metacharacters in the address match only themselves.
  {
    address: "a.b+c@ex.com",
    text: "axb+c@ex.com aXbbc@ex.com",
    expected: "axb+c@ex.com aXbbc@ex.com",
  },
  { address: "a.b+c@ex.com", text: "<a.b+c@ex.com>", expected: "<X>" },
  { address: "o(x)$|*@ex.com", text: "o(x)$|*@ex.com ox@ex.com", expected: "X ox@ex.com" },
];

describe("wholeAddressPattern", () => {
  it("finds an address only as a whole address, the same in JavaScript and PostgreSQL", async () => {
    const db = await getDb();
    for (const { address, text, expected } of CASES) {
      const js = text.replace(new RegExp(wholeAddressPattern(address), "gi"), () => "X");
      const result = (await db.execute(
        sql`select ${replaceMatches(sql`${text}::text`, wholeAddressPattern(address), "X")} as replaced,
          ${mentionsAddress(sql`${text}::text`, address)} as found`,
      )) as unknown as { rows: { replaced: string; found: boolean }[] };
      expect(js, `${address} in ${text} (JavaScript)`).toBe(expected);
      expect(result.rows[0], `${address} in ${text} (PostgreSQL)`).toEqual({
        replaced: expected,
        found: expected !== text,
      });
    }
  });

  it("keeps a backslash in the replacement as written", async () => {
    const db = await getDb();
    const result = (await db.execute(
      sql`select ${replaceMatches(sql`'to bob@example.com'::text`, wholeAddressPattern("bob@example.com"), "a\\1b")} as replaced`,
    )) as unknown as { rows: { replaced: string }[] };
    expect(result.rows[0]?.replaced).toBe("to a\\1b");
  });
});

describe("personPattern", () => {
  it("finds a full name only as whole words, the same in JavaScript and PostgreSQL", async () => {
    const db = await getDb();
    const pattern = personPattern("ann@example.com", "Ann");
    const text = "Ann wrote; ANN again. Annual report for Joanna, ann@example.com";
    const expected = "X wrote; X again. Annual report for Joanna, X";
    expect(text.replace(new RegExp(pattern, "gi"), () => "X")).toBe(expected);
    const result = (await db.execute(
      sql`select ${replaceMatches(sql`${text}::text`, pattern, "X")} as replaced`,
    )) as unknown as { rows: { replaced: string }[] };
    expect(result.rows[0]?.replaced).toBe(expected);
  });
});
