/**
 * The mails of an embedded node, as it writes them without SMTP_URL: `.eml` files under
 * DATA_DIR/outbox. Read back like a mail client would (quoted-printable undone), to follow their
 * links in tests.
 */
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";

export interface OutboxMail {
  file: string;
  raw: string;
  /** The decoded message (headers and bodies), quoted-printable soft breaks and escapes undone. */
  decoded: string;
  /** The token of the first link to PUBLIC_URL/#verify-email= or #reset-password=, if any. */
  token: string | undefined;
}

export function decodeQuotedPrintable(raw: string): string {
  return raw
    .replace(/=\r?\n/g, "")
    .replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

export async function outboxMails(dataDir: string): Promise<OutboxMail[]> {
  const dir = path.join(dataDir, "outbox");
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith(".eml")).sort();
  return Promise.all(
    names.map(async (name) => {
      const raw = await readFile(path.join(dir, name), "utf8");
      const decoded = decodeQuotedPrintable(raw);
      const token = /#(?:verify-email|reset-password)=([A-Za-z0-9_-]{43})/.exec(decoded)?.[1];
      return { file: path.join(dir, name), raw, decoded, token };
    }),
  );
}

/** Waits for a mail to `to` whose decoded text matches `match`, written after `seen` others. */
export async function waitForOutboxMail(
  dataDir: string,
  to: string,
  match: RegExp,
  options: { timeoutMs?: number; exclude?: Set<string> } = {},
): Promise<OutboxMail> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  const recipient = new RegExp(`^To: .*${to.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`, "im");
  for (;;) {
    const found = (await outboxMails(dataDir)).find(
      (m) => !options.exclude?.has(m.file) && recipient.test(m.decoded) && match.test(m.decoded),
    );
    if (found) {
      options.exclude?.add(found.file);
      return found;
    }
    if (Date.now() > deadline) throw new Error(`No mail to ${to} matching ${match} in ${dataDir}/outbox`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
