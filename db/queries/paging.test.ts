import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { apiKeys, dataRequests, invitations, memberships } from "@/db/schema";
import { listApiKeysForOrg } from "@/lib/mail/api-keys";
import {
  encodeCursor,
  FIRST_PAGE,
  PAGE_SIZE,
  type Page,
  type PageRequest,
  parsePageParams,
} from "@/lib/paging";
import { createOwner, createUser } from "@/lib/testing/factories";
import {
  insertOrganization,
  listInvitationsForEmail,
  listInvitationsPage,
  listMembers,
} from "./organizations";
import { listDataRequests } from "./privacy";

// Each console list with more rows than a page. The rows lie in the future, so they come before
// whatever the organisation already has, and three share each microsecond of one millisecond:
// the order needs the id to break ties, and a cursor cut to milliseconds would lose rows.

const SEEDED = PAGE_SIZE + 20;

/** The k-th microsecond of a millisecond far ahead. */
const timeAt = (k: number) => `2100-01-01T00:00:00.000${String(k).padStart(3, "0")}Z`;
const at = (k: number) => sql`${timeAt(k)}::timestamptz`;

type Row = { id: string };
type Harness = {
  /** Lists one page for the scope under test. */
  list: (page: PageRequest) => Promise<Page<Row>>;
  /** Adds a row at time k to the scope under test (or to another scope); returns its id. */
  add: (k: number, elsewhere?: boolean) => Promise<string>;
};

async function seed(h: Harness) {
  const rows: { k: number; id: string }[] = [];
  for (let i = 0; i < SEEDED; i++) {
    const k = Math.floor(i / 3);
    rows.push({ k, id: await h.add(k) });
    await h.add(k, true);
  }
  // Newest first; ties by id, highest first.
  rows.sort((a, b) => b.k - a.k || (a.id < b.id ? 1 : -1));
  return rows.map((r) => r.id);
}

const ids = (page: Page<Row>) => page.rows.map((r) => r.id);

function pagingTests(name: string, setup: () => Promise<Harness>) {
  describe(name, () => {
    it("pages newest first past a cursor: no duplicate, no gap, while rows arrive, only its own rows", async () => {
      const h = await setup();
      const expected = await seed(h);

      const first = await h.list(FIRST_PAGE);
      expect(ids(first)).toEqual(expected.slice(0, PAGE_SIZE));
      expect(first.newer).toBeNull();
      expect(first.older).not.toBeNull();

      // A row arrives between the two reads; the next page is where it was.
      const arrived = await h.add(999);
      const second = await h.list(parsePageParams({ after: first.older ?? "" }).request);
      expect(ids(second).slice(0, SEEDED - PAGE_SIZE)).toEqual(expected.slice(PAGE_SIZE));
      expect(ids(second).filter((id) => ids(first).includes(id))).toEqual([]);
      expect(ids(second)).not.toContain(arrived);
      // Only what the scope had before the seeding follows (one owner, say): no further page.
      expect(second.rows.length).toBeLessThanOrEqual(SEEDED - PAGE_SIZE + 1);
      expect(second.older).toBeNull();
      expect(second.newer).not.toBeNull();

      // Back from the second page: the same page as before, then the row that arrived is newer.
      const back = await h.list(parsePageParams({ before: second.newer ?? "" }).request);
      expect(ids(back)).toEqual(expected.slice(0, PAGE_SIZE));
      expect(back.newer).not.toBeNull();
      // Newer still: the first page whole, with that row on top, not the one row above.
      const top = await h.list(parsePageParams({ before: back.newer ?? "" }).request);
      expect(ids(top)).toEqual([arrived, ...expected.slice(0, PAGE_SIZE - 1)]);
      expect(top.newer).toBeNull();
    });

    it("another scope's rows never appear, whatever position the cursor names", async () => {
      const h = await setup();
      const foreign: string[] = [];
      for (let k = 0; k < 5; k++) foreign.push(await h.add(k, true));
      const mine = await h.add(2);
      const page = await h.list(FIRST_PAGE);
      expect(ids(page)).toContain(mine);
      for (const id of foreign) expect(ids(page)).not.toContain(id);
      // A well-formed cursor just past another scope's row is only a position.
      const past = await h.list({
        cursor: { at: timeAt(4), id: foreign[4] ?? "" },
        direction: "older",
      });
      expect(ids(past)).toContain(mine);
      for (const id of foreign) expect(ids(past)).not.toContain(id);
    });

    it("a malformed cursor shows the first page and names the field", async () => {
      const h = await setup();
      await seed(h);
      const first = ids(await h.list(FIRST_PAGE));
      const bad = [
        "not-a-cursor",
        "%%%",
        encodeCursor({ at: "2026-02-30T00:00:00.000000Z", id: "x" }),
        encodeCursor({ at: "0000-01-01T00:00:00.000000Z", id: "x" }),
        // Before PostgreSQL's earliest date: refused here, not by the database.
        encodeCursor({ at: "9999-12-31T00:00:00.000000Z BC", id: "x" }),
        encodeCursor({ at: timeAt(1), id: "x'); drop table users; --" }),
        Buffer.from(`${timeAt(1)}`).toString("base64url"),
        "A".repeat(5000),
      ];
      for (const text of bad) {
        for (const field of ["after", "before"] as const) {
          const parsed = parsePageParams({ [field]: text });
          expect(parsed.error).toBe(`${field}: is not a page position`);
          expect(ids(await h.list(parsed.request))).toEqual(first);
        }
      }
      // An empty parameter is none: the other one is read, not hidden behind it.
      const emptyAfter = parsePageParams({ after: "", before: "%%%" });
      expect(emptyAfter.error).toBe("before: is not a page position");
      // A position past the last row (its rows gone since the link was made): the first page.
      const pastEnd = await h.list({
        cursor: { at: "1970-01-01T00:00:00.000000Z", id: "0" },
        direction: "older",
      });
      expect(ids(pastEnd)).toEqual(first);
      const both = parsePageParams({ after: "x", before: "y" });
      expect(both.error).toMatch(/^after: give after or before, not both/);
      expect(ids(await h.list(both.request))).toEqual(first);
    });
  });
}

pagingTests("API keys of an organisation", async () => {
  const db = await getDb();
  const [mine, other] = [await createOwner(), await createOwner()];
  return {
    list: (page) => listApiKeysForOrg({ orgId: mine.orgId, page }),
    add: async (k, elsewhere) => {
      const id = randomUUID();
      await db.insert(apiKeys).values({
        id,
        orgId: (elsewhere ? other : mine).orgId,
        name: `key ${k}`,
        prefix: randomUUID().replaceAll("-", "").slice(0, 16),
        secretHash: "not a real hash",
        createdAt: at(k),
      });
      return id;
    },
  };
});

pagingTests("members of an organisation", async () => {
  const db = await getDb();
  const [mine, other] = [await createOwner(), await createOwner()];
  return {
    list: async (page) => {
      const p = await listMembers({ db, orgId: mine.orgId, page });
      return { ...p, rows: p.rows.map((r) => ({ id: r.userId })) };
    },
    add: async (k, elsewhere) => {
      const user = await createUser("member");
      await db.insert(memberships).values({
        orgId: (elsewhere ? other : mine).orgId,
        userId: user.id,
        role: "sender",
        createdAt: at(k),
      });
      return user.id;
    },
  };
});

pagingTests("waiting invitations of an organisation", async () => {
  const db = await getDb();
  const [mine, other] = [await createOwner(), await createOwner()];
  return {
    list: (page) => listInvitationsPage({ db, orgId: mine.orgId, page }),
    add: async (k, elsewhere) => {
      const id = randomUUID();
      await db.insert(invitations).values({
        id,
        orgId: (elsewhere ? other : mine).orgId,
        email: `${id}@example.test`,
        role: "sender",
        createdAt: at(k),
      });
      return id;
    },
  };
});

pagingTests("a person's invitations", async () => {
  const db = await getDb();
  const email = `invitee-${randomUUID()}@example.test`;
  const otherEmail = `other-${randomUUID()}@example.test`;
  return {
    list: (page) => listInvitationsForEmail({ db, email, page }),
    add: async (k, elsewhere) => {
      // One invitation per organisation and address, so each row has its own organisation.
      const org = await insertOrganization({ db, name: `org ${k}` });
      const id = randomUUID();
      await db.insert(invitations).values({
        id,
        orgId: org.id,
        email: elsewhere ? otherEmail : email,
        role: "sender",
        createdAt: at(k),
      });
      return id;
    },
  };
});

pagingTests("data requests of an organisation", async () => {
  const db = await getDb();
  const [mine, other] = [await createOwner(), await createOwner()];
  return {
    list: (page) => listDataRequests({ db, orgId: mine.orgId, page }),
    add: async (k, elsewhere) => {
      const id = randomUUID();
      await db.insert(dataRequests).values({
        id,
        orgId: (elsewhere ? other : mine).orgId,
        kind: "export",
        subjectEmail: `subject-${k}@example.test`,
        receivedAt: at(k),
        dueAt: new Date("2100-02-01T00:00:00Z"),
      });
      return id;
    },
  };
});
