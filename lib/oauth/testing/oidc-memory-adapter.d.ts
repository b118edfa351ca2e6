// oidc-provider's in-memory adapter, given a store of our own (lib/oauth/testing/demo.ts).
declare module "oidc-provider/lib/adapters/memory_adapter.js" {
  import type { Adapter } from "oidc-provider";

  const MemoryAdapter: new (model: string, store?: unknown, clockTolerance?: number) => Adapter;
  export default MemoryAdapter;
}
