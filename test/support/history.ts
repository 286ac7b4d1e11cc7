/** A chat's whole history through the REST API, page after page in seq order. */
import type { ApiClient } from "../../client/rest-client.ts";
import type { MessageView } from "../../lib/contracts.ts";

export async function fullHistory(client: ApiClient, chatId: string): Promise<MessageView[]> {
  const all: MessageView[] = [];
  for (;;) {
    const after = all.at(-1)?.seq ?? 0;
    const page = await client.request<{ messages: MessageView[]; hasMore: boolean }>(
      "GET",
      `/chats/${chatId}/messages?after=${after}&limit=100`,
    );
    all.push(...page.messages);
    if (!page.hasMore) return all;
  }
}
