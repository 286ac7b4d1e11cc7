/**
 * The reference web client: a plain page over the platform's own client library (client/), bundled
 * for the browser by web/build.ts. Signing in swaps the forms for the chat screen; everything after
 * goes through one ApiClient and one ChatSocket.
 */
import type { ApiClient } from "../../client/rest-client.ts";
import type { ChatView, ClientMessage, PresenceView, UserView } from "../../client/types.ts";
import { AccountSettings } from "./account-view.ts";
import { authNotice, setUpAuth, verifyFailure } from "./auth-view.ts";
import { ChatList } from "./chat-list.ts";
import { type ConnectionState, connect, reconnect } from "./connection.ts";
import { Conversation } from "./conversation.ts";
import { byId } from "./elements.ts";
import { errorText } from "./errors.ts";
import { type MailedLink, takeLink } from "./links.ts";
import { setUpPeople } from "./people.ts";
import { PersonView } from "./person-view.ts";
import { Platform } from "./platform.ts";
import { Presence } from "./presence.ts";
import { ProfileView } from "./profile-view.ts";

const STATE_TEXT: Record<ConnectionState, string> = {
  connecting: "Connecting…",
  open: "Connected",
  closed: "Connection lost, reconnecting…",
  offline: "Offline: messages you send wait until the connection is back",
};

function showState(state: ConnectionState): void {
  const el = byId("connection");
  el.dataset.state = state;
  el.textContent = STATE_TEXT[state];
}

async function start(api: ApiClient, user: UserView, openChat?: string): Promise<void> {
  const platform = new Platform(api);
  const presence = new Presence();
  const me = user.id;
  byId("auth-view").hidden = true;
  byId("home-view").hidden = false;
  byId("account-nav").hidden = false;
  byId("me-name").textContent = `Signed in as ${user.displayName}`;
  // Who the user blocks: the SDK marks their messages (blockedSender), the page folds them.
  const blocked = new Set<string>();

  // A chat the socket does not follow yet is resumed from its last message on; the ones before
  // are history. A followed chat is left alone: its messages in flight must not be skipped.
  const follow = (chat: ChatView) => {
    if (socket.lastSeen(chat.id) === undefined) socket.track(chat.id, chat.lastMessage?.seq ?? 0);
  };
  const hideSideViews = () => {
    profile.hide();
    person.hide();
    account.hide();
  };
  const showChat = (chat: ChatView) => {
    list.upsert(chat);
    follow(chat);
    hideSideViews();
    list.select(chat.id);
    document.body.classList.add("in-chat");
    void conversation.open(list.get(chat.id) ?? chat);
  };
  const showPerson = (userId: string) => {
    conversation.close();
    profile.hide();
    account.hide();
    list.select(undefined);
    document.body.classList.add("in-chat");
    void person.show(userId);
  };
  const list = new ChatList({
    platform,
    me,
    presence,
    list: byId("chat-list"),
    empty: byId("no-chats"),
    more: byId<HTMLButtonElement>("more-chats"),
    status: byId("chat-list-status"),
    onOpen: showChat,
    onChats: (chats) => {
      for (const chat of chats) follow(chat);
    },
    blocked: () => blocked,
  });
  const onMessage = (m: ClientMessage) => {
    if (!list.onMessage(m)) void refreshChats();
    conversation.onMessage(m);
  };
  const onFrame = (frame: { type: string } & Record<string, unknown>) => {
    if (frame.type === "typing") conversation.onTyping(String(frame.chatId), String(frame.userId));
    if (frame.type === "message_edited" || frame.type === "message_deleted") {
      conversation.onChanged(frame as unknown as ClientMessage);
    }
    if (frame.type === "presence") {
      presence.update(frame as unknown as PresenceView);
      conversation.showPresence();
      void list.render();
    }
  };
  let wasOpen = false;
  const socket = connect(api, {
    onMessage,
    onFrame,
    onReaction: (frame) => conversation.onReaction(frame),
    onPinsChanged: (frame) => conversation.onPinsChanged(frame),
    onRead: (frame) => list.onRead(frame.chatId, frame.userId, frame.seq),
    onState: (state) => {
      showState(state);
      // Back after a drop: chats made meanwhile appear; resume brings the messages of known ones.
      if (state === "open" && wasOpen) void refreshChats();
      if (state === "open") wasOpen = true;
    },
  });
  const conversation = new Conversation({
    elements: {
      view: byId("chat-view"),
      title: byId("chat-title"),
      presence: byId("chat-presence"),
      partnerProfile: byId<HTMLButtonElement>("partner-profile"),
      muteMenu: byId<HTMLDetailsElement>("mute-menu"),
      muteState: byId("mute-state"),
      pinsPanel: byId<HTMLDetailsElement>("pins-panel"),
      pinsCount: byId("pins-count"),
      pinsList: byId("pins-list"),
      log: byId("message-log"),
      messages: byId<HTMLOListElement>("messages"),
      loadOlder: byId<HTMLButtonElement>("load-older"),
      typing: byId("typing"),
      error: byId("chat-error"),
      announce: byId("chat-announce"),
      replyBar: byId("reply-bar"),
      replyText: byId("reply-text"),
      cancelReply: byId<HTMLButtonElement>("cancel-reply"),
      composer: byId<HTMLFormElement>("composer"),
      text: byId<HTMLTextAreaElement>("composer-text"),
    },
    platform,
    socket,
    list,
    presence,
    me,
    blocked: () => blocked,
    onProfile: showPerson,
  });
  const profile = new ProfileView({
    view: byId("profile-view"),
    form: byId<HTMLFormElement>("profile-form"),
    platform,
    onSaved: (p) => {
      byId("me-name").textContent = `Signed in as ${p.displayName}`;
    },
  });
  const account = new AccountSettings({
    platform,
    onDeleted: () => {
      socket.close();
      sessionStorage.setItem(NOTICE_KEY, "Your account was deleted.");
      location.reload();
    },
  });
  const person = new PersonView({
    elements: {
      view: byId("person-view"),
      name: byId("person-name"),
      username: byId("person-username"),
      bio: byId("person-bio"),
      message: byId<HTMLButtonElement>("person-message"),
      block: byId<HTMLButtonElement>("person-block"),
      close: byId<HTMLButtonElement>("close-person"),
      status: byId("person-status"),
      error: byId("person-error"),
    },
    platform,
    blocked,
    onBlockedChange: () => {
      socket.setBlocked(blocked);
      conversation.blockedChanged();
      void list.render();
    },
    onChat: showChat,
    onClose: () => document.body.classList.remove("in-chat"),
  });

  // One fetch of the list at a time; asks made meanwhile are answered by one more fetch after it.
  let refreshing: Promise<void> | undefined;
  let again = false;
  const refreshChats = (): Promise<void> => {
    if (refreshing) {
      again = true;
      return refreshing;
    }
    refreshing = (async () => {
      do {
        again = false;
        try {
          await list.refresh();
        } catch {
          // The list stays as it was; the next reconnect or new chat tries again.
        }
      } while (again);
    })().finally(() => {
      refreshing = undefined;
    });
    return refreshing;
  };

  setUpPeople({
    platform,
    me,
    searchForm: byId<HTMLFormElement>("search-form"),
    groupForm: byId<HTMLFormElement>("group-form"),
    results: byId("people-list"),
    error: byId("people-error"),
    onChat: showChat,
    onProfile: showPerson,
  });
  byId("back-to-list").addEventListener("click", () => {
    conversation.close();
    list.select(undefined);
    document.body.classList.remove("in-chat");
    byId("chat-list").querySelector("button")?.focus();
  });
  byId("show-profile").addEventListener("click", () => {
    conversation.close();
    person.hide();
    account.hide();
    list.select(undefined);
    document.body.classList.add("in-chat");
    void profile.show();
  });
  byId("close-profile").addEventListener("click", () => {
    profile.hide();
    document.body.classList.remove("in-chat");
  });
  byId("show-account").addEventListener("click", () => {
    profile.hide();
    void account.show();
  });
  byId("close-account").addEventListener("click", () => {
    account.hide();
    document.body.classList.remove("in-chat");
  });

  // The banner while the address is not verified; a verification link opened in this tab (only
  // the fragment changes, so the page stays) is posted with the signed-in client.
  const banner = byId("verify-banner");
  const verifyStatus = byId("verify-status");
  banner.hidden = user.emailVerified !== false;
  byId("resend-verification").addEventListener("click", async () => {
    verifyStatus.textContent = "";
    try {
      await api.resendVerification();
      verifyStatus.textContent = "A new link is on its way: the earlier ones no longer work.";
    } catch (err) {
      if ((err as { code?: string }).code === "EMAIL_ALREADY_VERIFIED") banner.hidden = true;
      else verifyStatus.textContent = errorText(err);
    }
  });
  const followLink = async (link: MailedLink) => {
    // A password reset ends every session: the page starts over signed out with the link.
    if (link.kind === "reset-password") {
      socket.close();
      history.replaceState(null, "", `/#reset-password=${link.token}`);
      location.reload();
      return;
    }
    verifyStatus.textContent = "Verifying your email address…";
    try {
      await api.verifyEmail(link.token);
      reconnect();
      verifyStatus.textContent = "";
      banner.hidden = true;
      if (!account.hidden) await account.show();
    } catch (err) {
      banner.hidden = false;
      verifyStatus.textContent = verifyFailure(err);
    }
  };
  addEventListener("hashchange", () => {
    const link = takeLink();
    if (link?.kind === "chat") platform.chat(link.chatId).then(showChat, () => undefined);
    else if (link) void followLink(link);
  });

  // A click on a push notification in a tab already open: the service worker asks for the chat.
  navigator.serviceWorker?.addEventListener("message", (event: MessageEvent) => {
    const data = event.data as { type?: string; chatId?: string } | undefined;
    if (data?.type !== "open-chat" || typeof data.chatId !== "string") return;
    platform.chat(data.chatId).then(showChat, () => undefined);
  });
  byId("sign-out").addEventListener("click", async () => {
    socket.close();
    await api.logout().catch(() => undefined);
    location.reload();
  });

  try {
    for (const u of await platform.blocks()) blocked.add(u.id);
    socket.setBlocked(blocked);
  } catch {
    // Without the list nothing is folded until the user blocks someone here.
  }
  await refreshChats();
  await socket.connect();
  byId("main").focus();
  if (openChat) platform.chat(openChat).then(showChat, () => undefined);
}

/** A notice carried over a reload (the account was deleted). */
const NOTICE_KEY = "social.notice";

const notice = sessionStorage.getItem(NOTICE_KEY);
if (notice) {
  sessionStorage.removeItem(NOTICE_KEY);
  authNotice(notice);
}
const opened = takeLink();
/** The chat a push notification's click opened the page for: shown once signed in. */
const pendingChat = opened?.kind === "chat" ? opened.chatId : undefined;
setUpAuth((api, user) => void start(api, user, pendingChat), opened?.kind === "chat" ? undefined : opened);
