/**
 * The reference web client: a plain page over the platform's own client library (client/), bundled
 * for the browser by web/build.ts. Signing in swaps the forms for the chat screen; everything after
 * goes through one ApiClient and one ChatSocket.
 */
import type { ApiClient } from "../../client/rest-client.ts";
import type { ChatView, ClientMessage, PresenceView, UserView } from "../../client/types.ts";
import { setUpAuth } from "./auth-view.ts";
import { ChatList } from "./chat-list.ts";
import { type ConnectionState, connect } from "./connection.ts";
import { Conversation } from "./conversation.ts";
import { byId } from "./elements.ts";
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

async function start(api: ApiClient, user: UserView): Promise<void> {
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

  try {
    for (const u of await platform.blocks()) blocked.add(u.id);
    socket.setBlocked(blocked);
  } catch {
    // Without the list nothing is folded until the user blocks someone here.
  }
  await refreshChats();
  await socket.connect();
  byId("main").focus();
}

setUpAuth((api, user) => void start(api, user));
