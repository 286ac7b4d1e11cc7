/** Turns what a call threw into the text the page shows: the API's own message where there is one. */
import { ApiError } from "../../client/rest-client.ts";

interface Detail {
  field?: string;
  message?: string;
}

export function errorText(err: unknown): string {
  if (err instanceof ApiError) {
    const error = (err.body as { error?: { message?: string; details?: unknown } } | undefined)?.error;
    const message = error?.message ?? `The server answered ${err.status}`;
    const details = Array.isArray(error?.details)
      ? (error.details as Detail[]).map((d) => d.message).filter((m): m is string => Boolean(m))
      : [];
    return details.length > 0 && !details.includes(message) ? `${message}: ${details.join("; ")}` : message;
  }
  if (err instanceof TypeError) return "The server cannot be reached. Check your connection and try again.";
  return err instanceof Error ? err.message : String(err);
}

/** Shows an error (or clears it with an empty text) in a role="alert" element. */
export function showError(el: HTMLElement, err: unknown): void {
  el.textContent = err === "" ? "" : errorText(err);
  el.hidden = el.textContent === "";
}
