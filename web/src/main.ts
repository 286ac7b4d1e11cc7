/**
 * The reference web client: a plain page over the platform's own client library (client/), bundled
 * for the browser by web/build.ts. Signing in swaps the forms for the chat screen; everything after
 * goes through one ApiClient and one ChatSocket.
 */
import type { ApiClient } from "../../client/rest-client.ts";
import type { ChatView, MessageView, PresenceView, UserView } from "../../lib/contracts.ts";
import { setUpAuth } from "./auth-view.ts";
import { ChatList } from "./chat-list.ts";
import { type ConnectionState, connect } from "./connection.ts";
import { Conversation } from "./conversation.ts";
import { byId } from "./elements.ts";
import { setUpPeople } from "./people.ts";
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

async function start(api: ApiClient, user: UserView): Promise<void> {
  const platform = new Platform(api);
  const presence = new Presence();
  const me = user.id;
  byId("auth-view").hidden = true;
  byId("home-view").hidden = false;
  byId("account-nav").hidden = false;
  byId("me-name").textContent = `Signed in as ${user.displayName}`;

  // A chat the socket does not follow yet is resumed from its last message on; the ones before
  // are history. A followed chat is left alone: its messages in flight must not be skipped.
  const follow = (chat: ChatView) => {
    if (socket.lastSeen(chat.id) === undefined) socket.track(chat.id, chat.lastMessage?.seq ?? 0);
  };
  const showChat = (chat: ChatView) => {
    list.upsert(chat);
    follow(chat);
    profile.hide();
    list.select(chat.id);
    document.body.classList.add("in-chat");
    void conversation.open(list.get(chat.id) ?? chat);
  };
  const list = new ChatList({
    platform,
    me,
    presence,
    list: byId("chat-list"),
    empty: byId("no-chats"),
    onOpen: showChat,
  });
  const onMessage = (m: MessageView) => {
    if (!list.onMessage(m)) void refreshChats();
    conversation.onMessage(m);
  };
  const onFrame = (frame: { type: string } & Record<string, unknown>) => {
    if (frame.type === "typing") conversation.onTyping(String(frame.chatId), String(frame.userId));
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
      log: byId("message-log"),
      messages: byId<HTMLOListElement>("messages"),
      loadOlder: byId<HTMLButtonElement>("load-older"),
      typing: byId("typing"),
      error: byId("chat-error"),
      composer: byId<HTMLFormElement>("composer"),
      text: byId<HTMLTextAreaElement>("composer-text"),
    },
    platform,
    socket,
    list,
    presence,
    me,
  });
  const profile = new ProfileView({
    view: byId("profile-view"),
    form: byId<HTMLFormElement>("profile-form"),
    platform,
    onSaved: (p) => {
      byId("me-name").textContent = `Signed in as ${p.displayName}`;
    },
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
          const chats = await platform.chats();
          for (const chat of chats) follow(chat);
          list.set(chats);
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
  });
  byId("back-to-list").addEventListener("click", () => {
    conversation.close();
    list.select(undefined);
    document.body.classList.remove("in-chat");
    byId("chat-list").querySelector("button")?.focus();
  });
  byId("show-profile").addEventListener("click", () => {
    conversation.close();
    list.select(undefined);
    document.body.classList.add("in-chat");
    void profile.show();
  });
  byId("close-profile").addEventListener("click", () => {
    profile.hide();
    document.body.classList.remove("in-chat");
  });
  byId("sign-out").addEventListener("click", async () => {
    socket.close();
    await api.logout().catch(() => undefined);
    location.reload();
  });

  await refreshChats();
  await socket.connect();
  byId("main").focus();
}

setUpAuth((api, user) => void start(api, user));
