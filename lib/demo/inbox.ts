import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { type AddressObject, simpleParser } from "mailparser";
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

/**
 * Messages the demo SMTP server accepted, newest first. With `senders`, only those sent by one
 * of these mailboxes (the address the SMTP session authenticated as, not the From header).
 */
export async function readDemoInbox(
  dataDir: string,
  opts: { limit?: number; senders?: readonly string[] } = {},
): Promise<DemoMessage[]> {
  const dir = demoInboxDir(dataDir);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const senders = opts.senders && new Set(opts.senders.map((s) => s.toLowerCase()));
  const limit = opts.limit ?? Number.POSITIVE_INFINITY;
  const newest = names
    .filter((name) => name.endsWith(".json"))
    .sort()
    .reverse();
  const messages: DemoMessage[] = [];
  for (const name of newest) {
    if (messages.length >= limit) break;
    const stored = await readStored(path.join(dir, name));
    if (!stored || (senders && !senders.has(stored.authUser.toLowerCase()))) continue;
    messages.push(await toDemoMessage(stored));
  }
  return messages;
}

async function readStored(file: string): Promise<StoredMessage | undefined> {
  try {
    return storedSchema.parse(JSON.parse(await readFile(file, "utf8")));
  } catch {
    // A file removed or half-written meanwhile is not worth failing the whole inbox for.
    return undefined;
  }
}

async function toDemoMessage(stored: StoredMessage): Promise<DemoMessage> {
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
