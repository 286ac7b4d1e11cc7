/**
 * Mailpit: a real SMTP server whose HTTP API the tests read the mails from. SMTP and HTTP on free
 * ports of 127.0.0.1, its database in the server's temp dir, no version check (it would ask
 * GitHub). MAILPIT_URL (`smtp://host:port|http://host:port`) points the tests at an external one.
 */
import path from "node:path";
import { findBinary } from "./binaries.ts";
import { expectLine } from "./probes.ts";
import { ManagedServer, type ServerHandle } from "./server-process.ts";
import { freePort } from "./servers.ts";

export interface MailSummary {
  ID: string;
  Subject: string;
  To: { Address: string }[];
  Created: string;
}

export interface Mail {
  id: string;
  subject: string;
  from: string;
  to: string[];
  text: string;
  html: string;
}

export interface MailpitHandle {
  readonly smtpUrl: string;
  readonly apiUrl: string;
  readonly server: ServerHandle | undefined;
  messages(): Promise<MailSummary[]>;
  /** The newest mail to `to` (whose subject matches), polled until it comes. */
  waitForMail(
    to: string,
    options?: { subject?: RegExp; timeoutMs?: number; exclude?: Set<string> },
  ): Promise<Mail>;
  deleteAll(): Promise<void>;
  stop(): Promise<void>;
}

export async function startMailpit(): Promise<MailpitHandle> {
  const external = process.env.MAILPIT_URL;
  if (external) {
    const [smtpUrl = "", apiUrl = ""] = external.split("|");
    return handle(smtpUrl, apiUrl, undefined);
  }
  const httpPort = await freePort();
  const server = await ManagedServer.start(
    {
      name: "mailpit",
      command: findBinary("mailpit"),
      args: (port, dir) => [
        "--smtp",
        `127.0.0.1:${port}`,
        "--listen",
        `127.0.0.1:${httpPort}`,
        "--database",
        path.join(dir, "mailpit.db"),
        "--disable-version-check",
        "--smtp-auth-accept-any",
        "--smtp-auth-allow-insecure",
        "--smtp-disable-rdns",
        "--max",
        "5000",
      ],
      url: (port) => `smtp://127.0.0.1:${port}`,
      probe: (port) => expectLine(port, undefined, (line) => line.startsWith("220 ")),
    },
    await freePort(),
  );
  return handle(server.url, `http://127.0.0.1:${httpPort}`, server);
}

function handle(smtpUrl: string, apiUrl: string, server: ServerHandle | undefined): MailpitHandle {
  const api = async <T>(route: string, init?: RequestInit): Promise<T> => {
    const res = await fetch(`${apiUrl}${route}`, init);
    if (!res.ok) throw new Error(`Mailpit ${route}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  const messages = async () =>
    (await api<{ messages: MailSummary[] }>("/api/v1/messages?limit=5000")).messages;
  return {
    smtpUrl,
    apiUrl,
    server,
    messages,
    async waitForMail(to, options = {}) {
      const deadline = Date.now() + (options.timeoutMs ?? 15_000);
      const wanted = to.toLowerCase();
      for (;;) {
        const found = (await messages()).find(
          (m) =>
            !options.exclude?.has(m.ID) &&
            m.To.some((t) => t.Address.toLowerCase() === wanted) &&
            (!options.subject || options.subject.test(m.Subject)),
        );
        if (found) {
          options.exclude?.add(found.ID);
          const full = await api<{
            ID: string;
            Subject: string;
            From: { Address: string; Name: string };
            To: { Address: string }[];
            Text: string;
            HTML: string;
          }>(`/api/v1/message/${found.ID}`);
          return {
            id: full.ID,
            subject: full.Subject,
            from: full.From.Name ? `${full.From.Name} <${full.From.Address}>` : full.From.Address,
            to: full.To.map((t) => t.Address),
            text: full.Text,
            html: full.HTML,
          };
        }
        if (Date.now() > deadline) throw new Error(`No mail to ${to} in Mailpit within the time`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async deleteAll() {
      const res = await fetch(`${apiUrl}/api/v1/messages`, { method: "DELETE" });
      if (!res.ok) throw new Error(`Mailpit delete: ${res.status}`);
    },
    stop: () => server?.stop() ?? Promise.resolve(),
  };
}
