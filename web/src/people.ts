/** Finding users by username, and starting a direct chat or a group with them. */
import type { ChatView, PublicProfile } from "../../client/types.ts";
import { field, h } from "./elements.ts";
import { showError } from "./errors.ts";
import type { Platform } from "./platform.ts";

export function setUpPeople(o: {
  platform: Platform;
  me: string;
  searchForm: HTMLFormElement;
  groupForm: HTMLFormElement;
  results: HTMLElement;
  error: HTMLElement;
  onChat(chat: ChatView): void;
  onProfile(userId: string): void;
}): void {
  const picked = new Set<string>();

  const run = async (action: () => Promise<void>) => {
    showError(o.error, "");
    try {
      await action();
    } catch (err) {
      showError(o.error, err);
    }
  };

  const item = (user: PublicProfile): HTMLElement => {
    const label = `${user.displayName} (@${user.username})`;
    const start = h("button", { type: "button", "aria-label": `Message ${label}` }, "Message");
    start.addEventListener(
      "click",
      () => void run(async () => o.onChat(await o.platform.openDirect(user.id))),
    );
    const profile = h("button", { type: "button", "aria-label": `About ${label}` }, "About");
    profile.addEventListener("click", () => o.onProfile(user.id));
    const tick = h("input", {
      type: "checkbox",
      checked: picked.has(user.id),
      "aria-label": `Add ${label} to the group`,
    });
    tick.addEventListener("change", () => (tick.checked ? picked.add(user.id) : picked.delete(user.id)));
    return h(
      "li",
      { class: "person" },
      h("span", { class: "person-name" }, label),
      start,
      profile,
      h("label", { class: "pick" }, tick, " Add to group"),
    );
  };

  o.searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const q = field(o.searchForm, "q").value.trim();
    if (!q) return;
    void run(async () => {
      const { users } = await o.platform.api.searchUsers(q, { limit: 20 });
      for (const user of users) o.platform.remember(user);
      const others = users.filter((u) => u.id !== o.me);
      o.results.replaceChildren(
        ...(others.length
          ? others.map(item)
          : [h("li", { class: "hint" }, `Nobody's username starts with "${q}".`)]),
      );
    });
  });

  o.groupForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = field(o.groupForm, "name").value.trim();
    void run(async () => {
      if (picked.size === 0) throw new Error("Tick at least one person for the group.");
      const chat = await o.platform.openGroup(name, [...picked]);
      picked.clear();
      o.groupForm.reset();
      for (const box of o.results.querySelectorAll<HTMLInputElement>("input[type=checkbox]"))
        box.checked = false;
      o.onChat(chat);
    });
  });
}
