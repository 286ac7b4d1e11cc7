/** Sign in and registration: on success hands the signed-in client over; a failure shows the API's message. */
import { ApiClient } from "../../client/rest-client.ts";
import type { UserView } from "../../client/types.ts";
import { byId, field } from "./elements.ts";
import { showError } from "./errors.ts";

export function setUpAuth(onSignedIn: (api: ApiClient, user: UserView) => void): void {
  const base = location.origin;
  handle(byId<HTMLFormElement>("login-form"), async (form) => {
    const api = new ApiClient(base);
    const login = field(form, "login").value.trim();
    const password = field(form, "password").value;
    const res = await api.login(
      login.includes("@") ? { email: login, password } : { username: login, password },
    );
    onSignedIn(api, res.user);
  });
  handle(byId<HTMLFormElement>("register-form"), async (form) => {
    const api = new ApiClient(base);
    const displayName = field(form, "displayName").value.trim();
    const res = await api.register({
      email: field(form, "email").value.trim(),
      username: field(form, "username").value.trim(),
      password: field(form, "password").value,
      ...(displayName ? { displayName } : {}),
    });
    onSignedIn(api, res.user);
  });
}

/** Submits a form once at a time; the form's role="alert" element shows what went wrong. */
function handle(form: HTMLFormElement, submit: (form: HTMLFormElement) => Promise<void>): void {
  const error = form.querySelector<HTMLElement>(".error");
  const button = form.querySelector<HTMLButtonElement>("button[type=submit]");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (button?.disabled) return;
    if (button) button.disabled = true;
    if (error) showError(error, "");
    try {
      await submit(form);
    } catch (err) {
      if (error) showError(error, err);
    } finally {
      if (button) button.disabled = false;
    }
  });
}
