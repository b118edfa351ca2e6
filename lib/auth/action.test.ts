import { describe, expect, it } from "vitest";
import { formToObject } from "./action";
import { PAGE_ORG_FIELD } from "./page-org";

/** Counts the form entries a reader visits, through every way FormData hands them out. */
class CountingForm extends FormData {
  visits = 0;
  override *entries(): FormDataIterator<[string, FormDataEntryValue]> {
    for (const entry of super.entries()) {
      this.visits++;
      yield entry;
    }
  }
  override getAll(name: string) {
    this.visits += [...super.entries()].length; // what the native lookup scans
    return super.getAll(name);
  }
  override *keys(): FormDataIterator<string> {
    for (const [key] of this.entries()) yield key;
  }
}

describe("formToObject (the action wrapper's form reader)", () => {
  it("keeps one value as text, several as a list, and drops the framework's fields", () => {
    const form = new FormData();
    form.append("$ACTION_ID_abc", "");
    form.append(PAGE_ORG_FIELD, "org-1");
    form.append("name", "Alice");
    form.append("scopes", "send");
    form.append("scopes", "read");
    form.append("upload", new Blob(["x"]));
    expect(formToObject(form)).toEqual({ name: "Alice", scopes: ["send", "read"], upload: "" });
  });

  it("reads a form of many distinct fields once, not once per field", () => {
    // A signed-in stranger controls the form: 18,000 empty fields fit in an action's 1 MB.
    const form = new CountingForm();
    for (let i = 0; i < 5_000; i++) form.append(`f${i}`, "");
    const read = formToObject(form);
    expect(Object.keys(read)).toHaveLength(5_000);
    expect(form.visits).toBeLessThanOrEqual(2 * 5_000);
  });
});
