import "server-only";
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

// What @upstash/ratelimit needs from a Redis client, with the algorithms and options we use
// (no analytics, no deny list, no dynamic limits): `evalsha(hash, keys, args)` and, after an
// error mentioning NOSCRIPT, `eval(script, keys, args)`. Nothing else is called.
//
// Its scripts begin with `#!lua flags=allow-key-locking`, a flag only Upstash accepts: Redis 7
// rejects the whole script. So we drop that line before loading, and map Upstash's hash (the
// SHA-1 of its original text) to the SHA-1 of the script Redis actually holds. Until a script
// has gone through `eval` once here, `evalsha` answers NOSCRIPT so the library sends it.
// After a Redis restart or SCRIPT FLUSH, Redis answers NOSCRIPT itself and the same happens.

type Arg = string | number;

const sha1 = (text: string) => createHash("sha1").update(text).digest("hex");
const stripShebang = (script: string) => script.replace(/^#![^\n]*\n/, "");
const toArgs = (args: unknown[]): Arg[] =>
  args.map((a) => (typeof a === "number" ? a : a == null ? "" : String(a)));

export function upstashCompatibleRedis(client: Redis) {
  const loaded = new Map<string, string>(); // Upstash hash -> hash of the stripped script
  return {
    async evalsha(hash: string, keys: string[], args: unknown[]): Promise<unknown> {
      const local = loaded.get(hash);
      if (!local) throw new Error("NOSCRIPT script not loaded through this adapter yet");
      return client.evalsha(local, keys.length, ...keys, ...toArgs(args));
    },
    async eval(script: string, keys: string[], args: unknown[]): Promise<unknown> {
      const stripped = stripShebang(script);
      const result = await client.eval(stripped, keys.length, ...keys, ...toArgs(args));
      loaded.set(sha1(script), sha1(stripped));
      return result;
    },
  };
}
