import type { Metadata } from "next";
import { connection } from "next/server";
import type { ReactNode } from "react";
import "./globals.css";

export const metadata: Metadata = {
  title: { default: "Mailwarden", template: "%s · Mailwarden" },
  description: "Send mail from your organisation's own mailboxes over OAuth2 SMTP, safely.",
};

export default async function RootLayout({ children }: { children: ReactNode }) {
  // Every page is rendered per request so that its scripts carry that response's CSP nonce.
  await connection();
  return (
    <html lang="en">
      <body className="antialiased">{children}</body>
    </html>
  );
}
