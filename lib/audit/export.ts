import "server-only";
import { createHmac } from "node:crypto";
import { stringify } from "csv-stringify/sync";
import type { DbOrTx } from "@/db";
import { type ActivityFilter, type ExportRow, iterateActivityExport } from "@/db/queries/activity";
import { digestUnsealed, type ManifestFields, macManifest } from "./chain";
import { actionLabel } from "./events";
import { auditChainKey } from "./key";

// Exports of the activity log, streamed: one keyset batch is read only when the client has
// taken the previous one (ReadableStream pull), so memory stays one batch whatever the size.
//
// JSON Lines is the verifiable format: one record per event with every stored field exactly as
// the MAC covers it, and a last line that is the manifest. CSV is for spreadsheets: its cells
// are neutralised against formula injection, so it is not byte-exact; its manifest goes into
// the export's own audit event (audit.exported), shown on the activity page, with any typed
// filter text recorded only by its length (filterForAudit in ./activity-filter.ts).

export type ExportFormat = "csv" | "jsonl";

export type ExportManifest = { type: "manifest"; format: ExportFormat } & ManifestFields & {
    /**
     * MAC under the chain key of every other field (`macManifest`): a filtered export can prove
     * each event's MAC but not the links between them, so without it anyone holding the file
     * could drop events and call the export filtered, or restate the counts and the last event.
     */
    mac: string;
  };

export function chainKeyId(key: Buffer): string {
  return createHmac("sha256", key).update("mailwarden.audit.key-id.v1").digest("hex").slice(0, 16);
}

const CSV_COLUMNS = [
  "id",
  "seq",
  "occurred_at",
  "actor_type",
  "actor_id",
  "actor",
  "action",
  "action_label",
  "target_type",
  "target_id",
  "outcome",
  "ip",
  "user_agent",
  "metadata",
  "personal",
  "prev_hash",
  "hash",
];

function csvCells(r: ExportRow): (string | number | null)[] {
  return [
    r.id,
    r.seq,
    r.occurredAt,
    r.actorType,
    r.actorId,
    r.actorLabel,
    r.action,
    actionLabel(r.action),
    r.targetType,
    r.targetId,
    r.outcome,
    r.ip,
    r.userAgent,
    r.metadata,
    r.personal,
    r.prevHash,
    r.hash,
  ];
}

/** CSV text of rows; a cell starting with =, +, -, @, a tab or a CR gets a leading quote. */
export function toCsv(rows: (string | number | null)[][]): string {
  return stringify(rows, { escape_formulas: true });
}

function jsonLine(r: ExportRow): string {
  return `${JSON.stringify({ type: "event", ...r })}\n`;
}

/**
 * Rows per keyset batch. CSV reads fewer at a time: csv-stringify allocates several objects per
 * cell (its cast context, [value, field] pairs, separator lists), and while it works through a
 * batch, that batch's rows survive the young-generation collections it triggers and are
 * promoted, so the heap grew with the batch: 1,000 rows per read took RSS up by 90–125 MB over a
 * 1,000,000-event export, 250 by 45–50 MB, at the same speed (bench/audit-export.ts). JSON Lines
 * (JSON.stringify, native) stays at 1,000.
 */
export const EXPORT_BATCH: Record<ExportFormat, number> = { csv: 250, jsonl: 1000 };

/**
 * The export as a byte stream. `onDone` is called once with the manifest when the last byte
 * was taken, or with `complete: false` when the client went away first or `check` refused.
 * `check` runs before each batch is read (lib/auth/download-access.ts): when it throws, the
 * stream errors, so the client's download fails rather than ending without its rest.
 */
export function exportStream({
  db,
  chain,
  filter,
  filterParams,
  format,
  batch = EXPORT_BATCH[format],
  check,
  onDone,
}: {
  db: DbOrTx;
  chain: string;
  filter: ActivityFilter;
  filterParams: Record<string, string>;
  format: ExportFormat;
  batch?: number;
  check?: () => Promise<void>;
  onDone?: (manifest: ExportManifest, complete: boolean) => Promise<void>;
}): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const batches = iterateActivityExport({ db, chain, filter, batch });
  const key = auditChainKey();
  const unsealedDigest = digestUnsealed();
  const manifest: ExportManifest = {
    type: "manifest",
    format,
    chain,
    filter: filterParams,
    filtered: Object.keys(filterParams).length > 0,
    count: 0,
    sealed: 0,
    unsealed: 0,
    first: null,
    last: null,
    unsealedDigest: unsealedDigest.hex(),
    generatedAt: new Date().toISOString(),
    chainKeyId: chainKeyId(key),
    mac: "",
  };
  const sign = () => {
    manifest.unsealedDigest = unsealedDigest.hex();
    const { type: _type, mac: _mac, ...fields } = manifest;
    manifest.mac = macManifest(key, fields);
  };
  let isHeaderSent = false;
  let isFinished = false;
  const finish = async (complete: boolean) => {
    if (isFinished) return;
    isFinished = true;
    sign();
    await onDone?.(manifest, complete);
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (format === "csv" && !isHeaderSent) {
          isHeaderSent = true;
          controller.enqueue(encoder.encode(toCsv([CSV_COLUMNS])));
          return;
        }
        try {
          await check?.();
        } catch (error) {
          await batches.return(undefined);
          await finish(false);
          controller.error(error);
          return;
        }
        const next = await batches.next();
        if (next.done) {
          sign();
          if (format === "jsonl")
            controller.enqueue(encoder.encode(`${JSON.stringify(manifest)}\n`));
          await finish(true);
          controller.close();
          return;
        }
        for (const r of next.value) {
          manifest.count++;
          if (r.seq === null || r.hash === null) {
            manifest.unsealed++;
            unsealedDigest.add(r);
            continue;
          }
          manifest.sealed++;
          manifest.first ??= { seq: r.seq, hash: r.hash };
          manifest.last = { seq: r.seq, hash: r.hash };
        }
        const text =
          format === "csv" ? toCsv(next.value.map(csvCells)) : next.value.map(jsonLine).join("");
        controller.enqueue(encoder.encode(text));
      },
      async cancel() {
        await batches.return(undefined);
        await finish(false);
      },
    },
    // One batch queued ahead at most: the reads follow the client's pace.
    { highWaterMark: 1 },
  );
}
