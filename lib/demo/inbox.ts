import { readdir, readFile, rm } from "node:fs/promises";
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
 * Which of these Message-IDs (`<…>` as sent) the demo server accepted. The queue asks this of
 * attempts that were interrupted (lib/mail/send-queued.ts): the demo server's stored messages
 * are its record of what it accepted. Stops reading once every one is found.
 */
export async function demoInboxMessageIds(
  dataDir: string,
  messageIds: readonly string[],
): Promise<Set<string>> {
  const found = new Set<string>();
  const wanted = new Set(messageIds.map((id) => id.toLowerCase()));
  const dir = demoInboxDir(dataDir);
  let names: string[];
  try {
    names = (await readdir(dir)).filter((name) => name.endsWith(".json"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return found;
    throw error;
  }
  // Newest first: an interrupted attempt is recent.
  names.sort().reverse();
  for (let i = 0; i < names.length && found.size < wanted.size; i += 64) {
    const batch = names.slice(i, i + 64);
    const ids = await Promise.all(batch.map((name) => storedMessageId(path.join(dir, name))));
    for (const id of ids) {
      const original = id === null ? undefined : messageIds.find((m) => m.toLowerCase() === id);
      if (original !== undefined) found.add(original);
    }
  }
  return found;
}

async function storedMessageId(file: string): Promise<string | null> {
  try {
    const stored = storedSchema.parse(JSON.parse(await readFile(file, "utf8")));
    const head = stored.raw.split(/\r?\n\r?\n/, 1)[0] ?? "";
    return /^message-id:[ \t]*(<[^>\r\n]+>)/im.exec(head)?.[1]?.toLowerCase() ?? null;
  } catch {
    return null;
  }
}

/**
 * Erasure in demo mode (lib/privacy/requests.ts): deletes every stored message whose file text
 * (envelope, the account that sent it, headers, body) `names` says names the person, so a message
 * to or from an erased address is not left readable in the demo inbox. Returns how many.
 */
export async function deleteDemoInboxMessages(
  dataDir: string,
  names: (text: string) => boolean,
): Promise<number> {
  const dir = demoInboxDir(dataDir);
  let files: string[];
  try {
    files = (await readdir(dir)).filter((name) => name.endsWith(".json"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw error;
  }
  let deleted = 0;
  for (let i = 0; i < files.length; i += 64) {
    const batch = files.slice(i, i + 64).map((name) => path.join(dir, name));
    const texts = await Promise.all(batch.map((file) => readFile(file, "utf8").catch(() => "")));
    const naming = batch.filter((_, j) => names(texts[j] ?? ""));
    await Promise.all(naming.map((file) => rm(file, { force: true })));
    deleted += naming.length;
  }
  return deleted;
}
