import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { EnvError, type EnvSource, parseEnv } from "./env";

function problemsOf(source: EnvSource): string[] {
  try {
    parseEnv(source);
  } catch (error) {
    if (error instanceof EnvError) return error.problems;
    throw error;
  }
  return [];
}

describe("parseEnv", () => {
  it("defaults to demo mode with no configuration", () => {
    const e = parseEnv({});
    expect(e.isDemo).toBe(true);
    expect(e.APP_URL).toBe("http://localhost:3000");
    expect(e.demoIssuer).toBe("http://localhost:3001");
  });

  it("reads OPERATOR_EMAILS as a lowercased list and names it when an entry is not an address", () => {
    expect(
      parseEnv({ OPERATOR_EMAILS: " Ops@Example.test, b@example.test ," }).OPERATOR_EMAILS,
    ).toEqual(["ops@example.test", "b@example.test"]);
    expect(parseEnv({}).OPERATOR_EMAILS).toEqual([]);
    expect(problemsOf({ OPERATOR_EMAILS: "ops@example.test, nobody" }).join("\n")).toMatch(
      /OPERATOR_EMAILS/,
    );
  });

  it("names DATABASE_URL when it is malformed", () => {
    expect(problemsOf({ DATABASE_URL: "mysql://x" }).join()).toMatch(/^DATABASE_URL/);
    expect(problemsOf({ DATABASE_URL: "not a url" }).join()).toMatch(/DATABASE_URL/);
  });

  it("refuses a Google client id without its secret, and the reverse", () => {
    expect(problemsOf({ GOOGLE_CLIENT_ID: "id" })).toEqual([
      "GOOGLE_CLIENT_ID is set but GOOGLE_CLIENT_SECRET is missing",
    ]);
    expect(problemsOf({ MICROSOFT_CLIENT_SECRET: "s" })).toEqual([
      "MICROSOFT_CLIENT_SECRET is set but MICROSOFT_CLIENT_ID is missing",
    ]);
  });

  it("reads a secret from NAME_FILE and refuses both forms at once", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mw-env-"));
    const file = path.join(dir, "secret");
    fs.writeFileSync(file, "from-file\n");
    const e = parseEnv({ GOOGLE_CLIENT_ID: "id", GOOGLE_CLIENT_SECRET_FILE: file });
    expect(e.google).toEqual({ clientId: "id", clientSecret: "from-file" });
    expect(e.isDemo).toBe(false);
    expect(problemsOf({ AUTH_SECRET: "a", AUTH_SECRET_FILE: file })).toEqual([
      "AUTH_SECRET and AUTH_SECRET_FILE are both set; set only one",
    ]);
    expect(problemsOf({ AUTH_SECRET_FILE: path.join(dir, "missing") })).toEqual([
      "AUTH_SECRET_FILE: cannot read the file it names",
    ]);
  });

  it("never starts demo mode silently in production, and requires the keyring there", () => {
    const problems = problemsOf({
      NODE_ENV: "production",
      GOOGLE_CLIENT_ID: "i",
      GOOGLE_CLIENT_SECRET: "s",
    });
    expect(problems).toContain(
      "TOKEN_ENCRYPTION_KEYS (or TOKEN_ENCRYPTION_KEYS_FILE) is required in production",
    );
    expect(problems).toContain("AUTH_SECRET is required in production");
    expect(problemsOf({ NODE_ENV: "production" }).join()).toMatch(/DEMO_MODE=true/);
    expect(parseEnv({ NODE_ENV: "production", DEMO_MODE: "true" }).isDemo).toBe(true);
  });

  it("refuses to start in production without AUDIT_CHAIN_KEY, naming it", () => {
    const production = {
      NODE_ENV: "production",
      GOOGLE_CLIENT_ID: "i",
      GOOGLE_CLIENT_SECRET: "s",
      AUTH_SECRET: "a".repeat(32),
      TOKEN_ENCRYPTION_KEYS: "k1:AAAA",
      DATABASE_URL: "postgres://db/mailwarden",
    };
    expect(problemsOf(production)).toEqual([
      "AUDIT_CHAIN_KEY (or AUDIT_CHAIN_KEY_FILE) is required in production",
    ]);
    expect(problemsOf({ ...production, AUDIT_CHAIN_KEY: "k".repeat(32) })).toEqual([]);
    expect(problemsOf({ ...production, AUDIT_CHAIN_KEY: "short" })).toEqual([
      "AUDIT_CHAIN_KEY: must be at least 32 characters",
    ]);
  });

  it("does not echo a secret value in its messages", () => {
    const problems = problemsOf({ REDIS_URL: "http://user:hunter2@redis" });
    expect(problems.join()).toMatch(/REDIS_URL/);
    expect(problems.join()).not.toContain("hunter2");
  });

  it("reads rate limit overrides as JSON and names the variable when they are malformed", () => {
    expect(
      parseEnv({ RATE_LIMITS: '{"signIn":{"tokens":100,"window":"1 m"}}' }).RATE_LIMITS,
    ).toEqual({
      signIn: { tokens: 100, window: "1 m" },
    });
    expect(problemsOf({ RATE_LIMITS: "{" }).join()).toMatch(/^RATE_LIMITS/);
    expect(problemsOf({ RATE_LIMITS: '{"signIn":{"tokens":0,"window":"1 m"}}' }).join()).toMatch(
      /RATE_LIMITS/,
    );
  });

  it("refuses a plain-http APP_URL in production unless it is localhost, demo or not", () => {
    const production = { NODE_ENV: "production", DEMO_MODE: "true" } as const;
    const problems = problemsOf({ ...production, APP_URL: "http://mail.example.com" });
    expect(problems.join()).toMatch(/^APP_URL must be an https:\/\/ URL in production/);
    expect(problemsOf({ ...production, APP_URL: "https://mail.example.com" })).toEqual([]);
    expect(problemsOf({ ...production, APP_URL: "http://localhost:3100" })).toEqual([]);
    expect(problemsOf({ APP_URL: "http://mail.example.com" })).toEqual([]);
  });

  it("reads TRUSTED_PROXY_HOPS as a small whole number, 0 by default", () => {
    expect(parseEnv({}).TRUSTED_PROXY_HOPS).toBe(0);
    expect(parseEnv({ TRUSTED_PROXY_HOPS: "2" }).TRUSTED_PROXY_HOPS).toBe(2);
    expect(problemsOf({ TRUSTED_PROXY_HOPS: "-1" }).join()).toMatch(/^TRUSTED_PROXY_HOPS/);
    expect(problemsOf({ TRUSTED_PROXY_HOPS: "one" }).join()).toMatch(/^TRUSTED_PROXY_HOPS/);
  });

  it("reads SYSTEM_AUDIT_RETENTION_DAYS as 1 to 3650 days, unset (or empty) keeping forever", () => {
    expect(parseEnv({}).SYSTEM_AUDIT_RETENTION_DAYS).toBeUndefined();
    expect(
      parseEnv({ SYSTEM_AUDIT_RETENTION_DAYS: " " }).SYSTEM_AUDIT_RETENTION_DAYS,
    ).toBeUndefined();
    expect(parseEnv({ SYSTEM_AUDIT_RETENTION_DAYS: "90" }).SYSTEM_AUDIT_RETENTION_DAYS).toBe(90);
    for (const bad of ["0", "-5", "1.5", "3651", "ninety", "1e9", "1e2", "0x10", "+30"]) {
      expect(problemsOf({ SYSTEM_AUDIT_RETENTION_DAYS: bad }).join()).toMatch(
        /^SYSTEM_AUDIT_RETENTION_DAYS: must be/,
      );
    }
  });

  it("reads the providers' connection caps and pace: Microsoft 3 connections and 30 a minute by default", () => {
    const e = parseEnv({});
    expect([
      e.SMTP_MAX_CONNECTIONS_MICROSOFT,
      e.SMTP_MAX_CONNECTIONS_GOOGLE,
      e.SMTP_MAX_CONNECTIONS_DEMO,
    ]).toEqual([3, 3, 3]);
    expect([e.SMTP_PER_MINUTE_MICROSOFT, e.SMTP_PER_MINUTE_GOOGLE, e.SMTP_PER_MINUTE_DEMO]).toEqual(
      [30, 60, 600],
    );
    expect(parseEnv({ SMTP_MAX_CONNECTIONS_GOOGLE: "2" }).SMTP_MAX_CONNECTIONS_GOOGLE).toBe(2);
    expect(problemsOf({ SMTP_MAX_CONNECTIONS_MICROSOFT: "0" }).join()).toMatch(
      /^SMTP_MAX_CONNECTIONS_MICROSOFT/,
    );
    expect(problemsOf({ SMTP_PER_MINUTE_MICROSOFT: "fast" }).join()).toMatch(
      /^SMTP_PER_MINUTE_MICROSOFT/,
    );
  });
});
