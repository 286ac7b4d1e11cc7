/**
 * `@username` in a message's text: an `@` at the start or after a character that cannot be part
 * of a username, then a username's 3 to 32 characters. Usernames compare case-insensitively.
 */
const MENTION = /(?<![A-Za-z0-9_])@([A-Za-z0-9_]{3,32})(?![A-Za-z0-9_])/g;

/** Names resolved per message at most: a message of 4,000 characters could hold 800. */
export const MAX_MENTION_NAMES = 50;

/** The names mentioned, lower-cased, in the order of their first mention, without repeats. */
export function mentionedNames(text: string): string[] {
  const names = new Set<string>();
  for (const match of text.matchAll(MENTION)) {
    names.add((match[1] as string).toLowerCase());
    if (names.size >= MAX_MENTION_NAMES) break;
  }
  return [...names];
}
