import { afterAll, beforeAll } from "vitest";
import { registerMailProvider, resetMailProviders } from "../providers";
import { type DemoTestbed, startDemoTestbed } from "./demo";
import { type MicrosoftStub, startMicrosoftStub } from "./microsoft-stub";

export type ProviderTestbeds = { demo: DemoTestbed; microsoft: MicrosoftStub };

/**
 * Starts the real demo provider (and, when asked, the Microsoft stub) before the file's tests,
 * registers them as mail providers, and closes them after. The fields are set once the
 * `beforeAll` has run, so read them inside tests and hooks only.
 */
export function useProviderTestbeds(
  options: { microsoft?: boolean | { timeoutMs?: number } } = {},
): ProviderTestbeds {
  const beds = {} as ProviderTestbeds;
  beforeAll(async () => {
    beds.demo = await startDemoTestbed();
    registerMailProvider(beds.demo.provider);
    if (!options.microsoft) return;
    beds.microsoft = await startMicrosoftStub(
      typeof options.microsoft === "object" ? options.microsoft : {},
    );
    registerMailProvider(beds.microsoft.provider);
  });
  afterAll(async () => {
    resetMailProviders();
    await Promise.all([beds.demo?.close(), beds.microsoft?.close()]);
  });
  return beds;
}
