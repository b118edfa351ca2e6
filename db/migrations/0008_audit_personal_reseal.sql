-- Hand-written, keep when regenerating: the chain now commits to a keyed hash of each event's
-- personal fields instead of the fields themselves. Email addresses move out of metadata into
-- `personal`, and every chain goes back to the sealer, which re-seals it from genesis in id order
-- under the new scheme (the old scheme's heads and checkpoints go with it, as they would no longer
-- match). A sealed row is never re-sealed after this point.
UPDATE "audit_events" SET
  "personal" = coalesce((
    SELECT jsonb_object_agg(e.key, e.value) FROM jsonb_each("metadata") AS e
    WHERE e.key IN ('email', 'address', 'previousAddress', 'returnedAddress')), '{}'::jsonb),
  "metadata" = "metadata" - ARRAY['email', 'address', 'previousAddress', 'returnedAddress'],
  "seq" = NULL, "prev_hash" = NULL, "hash" = NULL, "personal_mac" = NULL;--> statement-breakpoint
DELETE FROM "audit_checkpoints";--> statement-breakpoint
DELETE FROM "audit_chain_heads";--> statement-breakpoint
-- Anchors of purged ranges number the old chain; the re-sealed chain starts again at seq 1.
DELETE FROM "audit_chain_anchors";
