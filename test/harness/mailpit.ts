/**
 * Mailpit: a real SMTP server whose HTTP API the tests read the mails from. SMTP and HTTP on free
 * ports of 127.0.0.1, its database in the server's temp dir. Nothing phones home: no version check
 * (it would ask GitHub), no remote CSS or fonts fetched for the web UI; the POP3 server stays off
 * (it starts only with an auth file), and so do relaying, forwarding, webhooks and the link checker.
 * Its chaos triggers are on, inert until a test sets them (chaos()), to have SMTP answer errors.
 * MAILPIT_URL (`smtp://host:port|http://host:port`) points the tests at an external one, which
 * they cannot stop, kill or restart.
 */
import path from "node:path";
import { findBinary } from "./binaries.ts";
import { expectLine } from "./probes.ts";
import { ManagedServer, type ServerHandle } from "./server-process.ts";
import { freePort } from "./servers.ts";

export interface MailSummary {
  ID: string;
  Subject: string;
  From: { Address: string; Name: string };
  To: { Address: string; Name: string }[];
  Created: string;
}

export interface Mail {
  id: string;
  subject: string;
  /** `Name <address>`, or the address alone when the From has no name. */
  from: string;
  to: string[];
  text: string;
  html: string;
}

export type ChaosStage = "Sender" | "Recipient" | "Authentication";

export interface MailpitHandle {
  readonly smtpUrl: string;
  readonly apiUrl: string;
  /** The process, undefined for an external Mailpit. */
  readonly server: ServerHandle | undefined;
  /** Every stored mail, newest first. */
  messages(): Promise<MailSummary[]>;
  /** The newest mail to `to` (whose subject matches, not in `exclude`), polled until it comes. */
  waitForMail(
    to: string,
    options?: { subject?: RegExp; timeoutMs?: number; exclude?: Set<string> },
  ): Promise<Mail>;
  deleteAll(): Promise<void>;
  /**
   * Makes Mailpit's SMTP answer an error code to a share (0-100 %) of the MAIL FROM, RCPT TO or AUTH
   * commands; the stages not named go back to no errors. Lost on restart().
   */
  chaos(triggers: Partial<Record<ChaosStage, { ErrorCode: number; Probability: number }>>): Promise<void>;
  /** SIGTERM, then removes the temp dir (and the mails). */
  stop(): Promise<void>;
  /** SIGKILL: SMTP and HTTP are down until restart(). */
  kill(): Promise<void>;
  /** Starts it again on the same ports with the same database (its mails kept). */
  restart(): Promise<void>;
}

export async function startMailpit(): Promise<MailpitHandle> {
  const external = process.env.MAILPIT_URL;
  if (external) {
    const [smtpUrl = "", apiUrl = ""] = external.split("|");
    return handle(smtpUrl, apiUrl, undefined);
  }
  const httpPort = await freePort();
  const apiUrl = `http://127.0.0.1:${httpPort}`;
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
        "--block-remote-css-and-fonts",
        "--enable-chaos",
        "--smtp-auth-accept-any",
        "--smtp-auth-allow-insecure",
        "--smtp-disable-rdns",
        "--max",
        "5000",
      ],
      url: (port) => `smtp://127.0.0.1:${port}`,
      // Both halves: the SMTP greeting, and the API the tests read from.
      probe: async (port) => {
        await expectLine(port, undefined, (line) => line.startsWith("220 "));
        const res = await fetch(`${apiUrl}/readyz`, { signal: AbortSignal.timeout(1_000) });
        if (!res.ok) throw new Error(`Mailpit /readyz answered ${res.status}`);
      },
    },
    await freePort(),
  );
  return handle(server.url, apiUrl, server);
}

interface FullMessage {
  ID: string;
  Subject: string;
  From: { Address: string; Name: string };
  To: { Address: string }[];
  Text: string;
  HTML: string;
}

function handle(smtpUrl: string, apiUrl: string, server: ServerHandle | undefined): MailpitHandle {
  const api = async <T>(route: string, init?: RequestInit): Promise<T> => {
    const res = await fetch(`${apiUrl}${route}`, init);
    if (!res.ok) throw new Error(`Mailpit ${route}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  const messages = async () =>
    (await api<{ messages: MailSummary[] }>("/api/v1/messages?limit=5000")).messages;
  const owned = (what: string): ServerHandle => {
    if (!server) throw new Error(`cannot ${what} the external Mailpit of MAILPIT_URL`);
    return server;
  };
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
          const full = await api<FullMessage>(`/api/v1/message/${found.ID}`);
          return {
            id: full.ID,
            subject: full.Subject,
            from: full.From.Name ? `${full.From.Name} <${full.From.Address}>` : full.From.Address,
            to: full.To.map((t) => t.Address),
            text: full.Text,
            html: full.HTML,
          };
        }
        if (Date.now() > deadline) {
          const what = options.subject ? ` with a subject matching ${options.subject}` : "";
          throw new Error(`No mail to ${to}${what} in Mailpit within ${options.timeoutMs ?? 15_000} ms`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async deleteAll() {
      const res = await fetch(`${apiUrl}/api/v1/messages`, { method: "DELETE" });
      if (!res.ok) throw new Error(`Mailpit delete: ${res.status}`);
    },
    async chaos(triggers) {
      const off = { ErrorCode: 451, Probability: 0 };
      await api("/api/v1/chaos", {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          Sender: off,
          Recipient: off,
          Authentication: { ...off, ErrorCode: 535 },
          ...triggers,
        }),
      });
    },
    stop: () => server?.stop() ?? Promise.resolve(),
    kill: () => owned("kill").kill(),
    restart: () => owned("restart").restart(),
  };
}
