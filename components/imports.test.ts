import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

// components/ is presentational: data and actions arrive as props. Importing app/ would tie a
// component to one route; importing db/ would drag the schema (and, one step on, the database
// client) into client bundles.
const ROOT = path.resolve(import.meta.dirname);
const FORBIDDEN =
  /(?:from\s*|import\s*\(?\s*)["'](?:@\/(?:app|db)(?:\/|["'])|(?:\.\.\/)+(?:app|db)\/)/;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return /\.tsx?$/.test(entry.name) && !entry.name.endsWith(".test.ts") ? [full] : [];
  });
}

describe("components/", () => {
  it("finds the files it checks", () => {
    expect(sourceFiles(ROOT).map((f) => path.relative(ROOT, f))).toContain("app-shell.tsx");
  });

  it("imports nothing from app/ or db/", () => {
    const offenders = sourceFiles(ROOT).flatMap((file) =>
      readFileSync(file, "utf8")
        .split("\n")
        .filter((line) => FORBIDDEN.test(line))
        .map((line) => `${path.relative(ROOT, file)}: ${line.trim()}`),
    );
    expect(offenders).toEqual([]);
  });

  it("recognises the imports it forbids", () => {
    expect(FORBIDDEN.test('import type { Role } from "@/db/schema";')).toBe(true);
    expect(FORBIDDEN.test('import { x } from "@/app/(signed-in)/notice-actions";')).toBe(true);
    expect(FORBIDDEN.test('import { getDb } from "@/db";')).toBe(true);
    expect(FORBIDDEN.test('import { getDb } from "../../db/index";')).toBe(true);
    expect(FORBIDDEN.test('import { cn } from "@/lib/utils";')).toBe(false);
    expect(FORBIDDEN.test('import { dbThing } from "@/lib/dbx";')).toBe(false);
  });
});
