import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

// The action wrapper refuses an organisation's action whose form does not name the organisation
// of its page (lib/auth/action.ts): a form that forgot the field would be refused every time.
// SubmitButton sends it; a form without one renders PageOrgField (components/page-org.tsx).
const ROOT = process.cwd();

// Forms that post to something other than an organisation's action of the wrapper.
const EXEMPT: Record<string, string> = {
  "app/(auth)/sign-in/page.tsx": "Auth.js sign-in, before any organisation",
  "components/app-shell.tsx": "Auth.js sign-out",
  "components/org-switcher.tsx": 'a "signedIn" action: it leaves the page\'s organisation',
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith(".tsx") ? [full] : [];
  });
}

/** Each `<form>` that posts to a function (a server action), with what it contains. */
function actionForms(): Array<{ file: string; form: string }> {
  return ["app", "components"].flatMap((dir) =>
    sourceFiles(path.join(ROOT, dir)).flatMap((full) => {
      const file = path.relative(ROOT, full);
      const forms = readFileSync(full, "utf8").match(/<form\b[\s\S]*?<\/form>/g) ?? [];
      return forms.filter((form) => /\baction=\{/.test(form)).map((form) => ({ file, form }));
    }),
  );
}

describe("every form posting to an action", () => {
  it("finds the forms it checks", () => {
    const files = new Set(actionForms().map((f) => f.file));
    expect(files).toContain("components/incident-switch.tsx");
    expect(files).toContain("components/notice-list.tsx");
    expect(files.size).toBeGreaterThan(10);
  });

  it("sends the organisation its page was rendered for", () => {
    const missing = actionForms()
      .filter(({ file, form }) => !EXEMPT[file] && !/<(SubmitButton|PageOrgField)\b/.test(form))
      .map(({ file, form }) => `${file}: ${form.split("\n")[0]}`);
    expect(missing).toEqual([]);
  });
});
