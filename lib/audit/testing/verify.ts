import { getDb } from "@/db";
import { verifyAllAuditChains } from "../verify-all";

/** `npm run audit:verify` for one chain, as its operator reads it: exit code and report. */
export async function verifyChainReport(chain: string) {
  const out = {
    text: "",
    write(t: string) {
      this.text += t;
    },
  };
  const code = await verifyAllAuditChains({ db: await getDb(), chain, out, err: { write() {} } });
  return { code, text: out.text };
}
