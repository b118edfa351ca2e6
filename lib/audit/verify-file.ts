import "server-only";
import fs from "node:fs";
import readline from "node:readline";
import {
  digestUnsealed,
  hashEvent,
  macManifest,
  personalFieldsIntact,
  type SealedEvent,
} from "./chain";
import { chainKeyId, type ExportManifest } from "./export";

type Output = { write: (text: string) => void };

type ExportedEvent = Omit<SealedEvent, "seq" | "prevHash" | "hash" | "personalMac"> & {
  seq: number | null;
  prevHash: string | null;
  hash: string | null;
  personalMac: string | null;
};

/** Whether the manifest's MAC holds; the reason when it does not. */
function manifestProblem(key: Buffer, m: ExportManifest): string | null {
  if (typeof m.mac !== "string" || m.mac === "") {
    return "has no MAC, so nothing in it can be trusted (made before manifests were signed, or the MAC was removed)";
  }
  const { type: _type, mac, ...fields } = m;
  if (macManifest(key, fields) !== mac) {
    return "fails its MAC: its counts, filter, first or last event were edited";
  }
  return null;
}

/** The file's last non-empty line, read from its end (the manifest is small), or null. */
async function lastLine(file: string): Promise<string | null> {
  const handle = await fs.promises.open(file, "r");
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, 1 << 20);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    const lines = buffer.toString("utf8").split("\n");
    while (lines.length > 1 && (lines.at(-1) ?? "").trim() === "") lines.pop();
    return lines.length > 1 || length === size ? (lines.at(-1) ?? null) : null;
  } finally {
    await handle.close();
  }
}

/** The manifest's own checks, before anything in it or the file is trusted. */
async function signedManifestProblem(file: string, key: Buffer): Promise<string | null> {
  let record: ExportManifest;
  try {
    record = JSON.parse((await lastLine(file)) ?? "") as ExportManifest;
  } catch {
    return null; // not a manifest: the line by line pass names the problem
  }
  if (record?.type !== "manifest") return null;
  if (record.chainKeyId !== chainKeyId(key)) {
    return "made under another AUDIT_CHAIN_KEY than the one given";
  }
  return manifestProblem(key, record);
}

/**
 * Checks a JSON Lines export offline under AUDIT_CHAIN_KEY: every sealed event's MAC; for an
 * unfiltered export the links between consecutive events too (a filtered one leaves gaps by
 * design); and the manifest: its own MAC first, before any event is read (key id, filter,
 * counts, first and last seq and hash, the digest of the unsealed events), then each of those
 * against the file. An event is sealed
 * (seq, hash, prev_hash and personal MAC all set) or unsealed (all four null, after every sealed
 * one, as exported); unsealed events are held to the manifest's count and digest. Reads line by
 * line, so a file of any size fits. Returns the exit code: 0 when all holds, 1 otherwise.
 */
export async function verifyExportFile({
  file,
  key,
  out,
}: {
  file: string;
  key: Buffer;
  out: Output;
}): Promise<number> {
  const signed = await signedManifestProblem(file, key);
  if (signed) {
    out.write(`BROKEN manifest: ${signed}\n`);
    return 1;
  }
  const lines = readline.createInterface({
    input: fs.createReadStream(file, "utf8"),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  let manifest: ExportManifest | null = null;
  let count = 0;
  let sealed = 0;
  let unsealed = 0;
  const unsealedDigest = digestUnsealed();
  let first: { seq: number; hash: string } | null = null;
  let previous: { seq: number; hash: string } | null = null;
  // Reported only once the manifest (the last line) says the export is unfiltered.
  let linkProblem: string | null = null;
  let lineNo = 0;
  const broken = (where: number | string, message: string) => {
    out.write(`BROKEN ${typeof where === "number" ? `line ${where}` : where}: ${message}\n`);
    return 1;
  };
  for await (const line of lines) {
    lineNo++;
    if (line.trim() === "") continue;
    if (manifest) return broken(lineNo, "content after the manifest");
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return broken(lineNo, "not JSON");
    }
    if (record.type === "manifest") {
      manifest = record as unknown as ExportManifest;
      continue;
    }
    if (record.type !== "event") return broken(lineNo, "neither an event nor the manifest");
    count++;
    const { type: _type, ...event } = record as unknown as ExportedEvent & { type: string };
    const { seq, hash, prevHash, personalMac } = event;
    const seal = [seq, hash, prevHash, personalMac];
    if (seal.every((v) => v === null)) {
      unsealed++;
      unsealedDigest.add(event);
      continue;
    }
    if (seal.some((v) => v === null)) {
      return broken(lineNo, "partly sealed: seq, hash, prev_hash or personal MAC removed");
    }
    if (seq === null || hash === null || prevHash === null || personalMac === null) continue;
    const at = `line ${lineNo} (event id ${event.id}, seq ${seq})`;
    // The export lists the sealed events first: one after an unsealed event was moved there.
    if (unsealed > 0) return broken(at, "sealed event after the unsealed ones (moved?)");
    sealed++;
    const chained = { ...event, seq, prevHash, personalMac };
    if (hashEvent(key, chained) !== hash) {
      return broken(at, "hash does not match the event's fields (edited, or another key)");
    }
    if (!personalFieldsIntact(key, chained)) {
      return broken(at, "personal fields do not match their MAC (edited)");
    }
    if (previous && linkProblem === null) {
      if (seq !== previous.seq + 1) {
        linkProblem = `${at}: follows seq ${previous.seq} (events missing or out of order)`;
      } else if (prevHash !== previous.hash) {
        linkProblem = `${at}: prev_hash does not match the event before it`;
      }
    }
    first ??= { seq, hash };
    previous = { seq, hash };
  }
  if (!manifest) return broken("end of file", "no manifest: the export was cut short");
  const m = manifest;
  if (m.chainKeyId !== chainKeyId(key)) {
    return broken("manifest", "made under another AUDIT_CHAIN_KEY than the one given");
  }
  const unsigned = manifestProblem(key, m);
  if (unsigned) return broken("manifest", unsigned);
  if (m.count !== count || m.sealed !== sealed || m.unsealed !== unsealed) {
    return broken(
      "manifest",
      `says ${m.count} events (${m.sealed} sealed, ${m.unsealed} unsealed), the file has ${count} (${sealed}, ${unsealed}): events added or removed`,
    );
  }
  if (m.unsealedDigest !== unsealedDigest.hex()) {
    return broken("manifest", "the unsealed events do not match its digest (edited)");
  }
  const same = (a: { seq: number; hash: string } | null, b: typeof a) =>
    a === b || (a !== null && b !== null && a.seq === b.seq && a.hash === b.hash);
  if (!same(m.first, first) || !same(m.last, previous)) {
    return broken("manifest", "first or last event does not match the file");
  }
  if (!m.filtered && linkProblem) return broken("link", linkProblem);
  out.write(
    `intact: ${count} events (${sealed} sealed)${
      m.filtered
        ? "; filtered export: each event's MAC checked, links between them not"
        : ", links checked"
    }\n`,
  );
  return 0;
}
