/**
 * Links into the page: the mailed `/#verify-email=TOKEN` and `/#reset-password=TOKEN`, and
 * `/#chat=ID`, which a push notification opens. The token rides in the fragment, so it never
 * reaches a server; the page reads it and clears the fragment at once (history.replaceState), so
 * it stays out of the history, bookmarks and a copied address.
 */
export interface MailedLink {
  kind: "verify-email" | "reset-password";
  token: string;
}

export type PageLink = MailedLink | { kind: "chat"; chatId: string };

const LINK = /^#(verify-email|reset-password|chat)=([A-Za-z0-9_-]{1,200})$/;

/** The link in the address's fragment, if any, with the fragment cleared. */
export function takeLink(): PageLink | undefined {
  const match = LINK.exec(location.hash);
  if (!match) return undefined;
  history.replaceState(null, "", location.pathname + location.search);
  const value = match[2] as string;
  if (match[1] === "chat") return { kind: "chat", chatId: value };
  return { kind: match[1] as MailedLink["kind"], token: value };
}

/** A mailed link in the fragment, if that is what it holds (cleared then); a chat link is left. */
export function takeMailedLink(): MailedLink | undefined {
  if (!/^#(verify-email|reset-password)=/.test(location.hash)) return undefined;
  const link = takeLink();
  return link?.kind === "chat" ? undefined : link;
}
