-- Hand-written, keep when regenerating: events sealed under the old unkeyed SHA-256 scheme go
-- back to the sealer, which re-seals every chain from genesis under AUDIT_CHAIN_KEY in id order
-- (the order they were appended in). A sealed row is never re-sealed after this point.
UPDATE "audit_events" SET "seq" = NULL, "prev_hash" = NULL, "hash" = NULL;
