import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { SelectField, TextAreaField, TextField } from "./field";

// Each kind of control, rendered the way a form renders it after the server refused a value.
const KINDS = {
  input: () =>
    createElement(TextField, { label: "Subject", name: "subject", errors: ["Too long."] }),
  select: () =>
    createElement(
      SelectField,
      { label: "From mailbox", name: "mailbox", errors: ["Pick a mailbox."] },
      createElement("option", { value: "a" }, "a@example.test"),
    ),
  textarea: () =>
    createElement(TextAreaField, {
      label: "To",
      name: "to",
      hint: "One address per line.",
      errors: ["Not an address."],
    }),
};

function control(html: string): string {
  const tag = /<(input|select|textarea)\b[^>]*>/.exec(html)?.[0];
  if (!tag) throw new Error(`no control in ${html}`);
  return tag;
}

describe("fields", () => {
  for (const [kind, render] of Object.entries(KINDS)) {
    it(`an invalid ${kind} has the red border, aria-invalid and its error as description`, () => {
      const html = renderToStaticMarkup(render());
      const tag = control(html);
      expect(tag).toMatch(/class="[^"]*\bborder-red-500\b/);
      expect(tag).not.toMatch(/\bborder-slate-300\b/);
      expect(tag).toContain('aria-invalid="true"');
      const describedBy = /aria-describedby="([^"]+)"/.exec(tag)?.[1]?.split(" ") ?? [];
      const errorId = /<p id="([^"]+)" class="[^"]*text-red-700/.exec(html)?.[1];
      expect(errorId).toBeDefined();
      expect(describedBy).toContain(errorId);
    });
  }

  it("a valid field has the grey border and describes itself by its hint only", () => {
    const html = renderToStaticMarkup(
      createElement(TextAreaField, { label: "To", name: "to", hint: "One address per line." }),
    );
    const tag = control(html);
    expect(tag).toMatch(/\bborder-slate-300\b/);
    expect(tag).not.toContain("aria-invalid");
    expect(tag).toContain('aria-describedby="to-hint"');
    expect(html).toContain('<label for="to"');
    expect(tag).toContain('id="to"');
  });

  it("keeps the hint in the description when there is also an error", () => {
    const tag = control(renderToStaticMarkup(KINDS.textarea()));
    expect(tag).toContain('aria-describedby="to-hint to-error"');
  });
});
