import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import type { AddressObject } from "mailparser";
import { z } from "zod";
import { demoDir } from "./files";

export type DemoMessage = {
  id: string;
  receivedAt: string;
  authUser: string;
  envelopeFrom: string;
  envelopeTo: string[];
  from: string;
  to: string[];
  cc: string[];
  subject: string;
  text: string;
  html?: string;
  messageId: string | null;
};

export function demoInboxDir(dataDir: string): string {
  return path.join(demoDir(dataDir), "inbox");
}

/* ------------------------------------------------------------------------------------------ */
/* Reading the inbox (kept apart from smtp.ts so pages need not load smtp-server)             */

const storedSchema = z.object({
  id: z.string(),
  receivedAt: z.string(),
  authUser: z.string(),
  envelope: z.object({ from: z.string(), to: z.array(z.string()) }),
  raw: z.string(),
});
export type StoredMessage = z.infer<typeof storedSchema>;

/** Messages the demo SMTP server accepted, newest first. */
export async function readDemoInbox(
  dataDir: string,
  opts: { limit?: number } = {},
): Promise<DemoMessage[]> {
  const dir = demoInboxDir(dataDir);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const newest = names
    .filter((name) => name.endsWith(".json"))
    .sort()
    .reverse()
    .slice(0, opts.limit ?? Number.POSITIVE_INFINITY);
  const messages = await Promise.all(newest.map((name) => readStored(path.join(dir, name))));
  return messages.filter((m): m is DemoMessage => m !== undefined);
}

async function readStored(file: string): Promise<DemoMessage | undefined> {
  let stored: StoredMessage;
  try {
    stored = storedSchema.parse(JSON.parse(await readFile(file, "utf8")));
  } catch {
    // A file removed or half-written meanwhile is not worth failing the whole inbox for.
    return undefined;
  }
  // Loaded on first use: the app imports this module on every page (through lib/demo), and
  // mailparser is needed only by the demo inbox page.
  const { simpleParser } = await import("mailparser");
  const parsed = await simpleParser(stored.raw);
  return {
    id: stored.id,
    receivedAt: stored.receivedAt,
    authUser: stored.authUser,
    envelopeFrom: stored.envelope.from,
    envelopeTo: stored.envelope.to,
    from: formatAddresses(parsed.from)[0] ?? "",
    to: formatAddresses(parsed.to),
    cc: formatAddresses(parsed.cc),
    subject: parsed.subject ?? "",
    text: parsed.text ?? "",
    ...(typeof parsed.html === "string" ? { html: parsed.html } : {}),
    messageId: parsed.messageId ?? null,
  };
}

/** `Name <address>` (or the bare address) for each mailbox, groups flattened. */
function formatAddresses(field: AddressObject | AddressObject[] | undefined): string[] {
  if (!field) return [];
  const objects = Array.isArray(field) ? field : [field];
  return objects.flatMap((object) =>
    object.value.flatMap((entry) => {
      const members = entry.group ?? [entry];
      return members.map((m) => (m.name ? `${m.name} <${m.address ?? ""}>` : (m.address ?? "")));
    }),
  );
}

/**
 * Whether the demo server accepted a message with this Message-ID (`<…>` as sent). The queue
 * asks this of an attempt that was interrupted (lib/mail/send-queued.ts): the demo server's
 * stored messages are its record of what it accepted.
 */
export async function demoInboxHasMessageId(dataDir: string, messageId: string): Promise<boolean> {
  const dir = demoInboxDir(dataDir);
  let names: string[];
  try {
    names = (await readdir(dir)).filter((name) => name.endsWith(".json"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
  const header = new RegExp(`^message-id:\\s*${escapeRegExp(messageId)}\\s*$`, "im");
  for (let i = 0; i < names.length; i += 64) {
    const batch = names.slice(i, i + 64);
    const found = await Promise.all(
      batch.map(async (name) => {
        try {
          const stored = storedSchema.parse(
            JSON.parse(await readFile(path.join(dir, name), "utf8")),
          );
          const head = stored.raw.split(/\r?\n\r?\n/, 1)[0] ?? "";
          return header.test(head);
        } catch {
          return false;
        }
      }),
    );
    if (found.includes(true)) return true;
  }
  return false;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
