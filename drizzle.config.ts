import { defineConfig } from "drizzle-kit";

// Only generates SQL from db/schema.ts; the app's migrator applies it (never `push`).
export default defineConfig({
  dialect: "postgresql",
  schema: "./db/schema.ts",
  out: "./db/migrations",
});
