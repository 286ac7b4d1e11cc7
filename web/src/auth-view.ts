/**
 * Sign in (with the second step when the account has two-factor authentication), registration,
 * "forgot password", and the pages of mailed links: a reset link asks for the new password, a
 * verification link is posted and its result shown. On success hands the signed-in client over;
 * a failure shows the API's message.
 */
import { ApiClient, isMfaChallenge } from "../../client/rest-client.ts";
import type { MfaChallenge, UserView } from "../../client/types.ts";
import { byId, field } from "./elements.ts";
import { errorText, showError } from "./errors.ts";
import { type MailedLink, takeMailedLink } from "./links.ts";

/** The forms of the signed-out page; one of them shows at a time. */
const PANELS = ["auth-main", "mfa-panel", "forgot-panel", "reset-panel"] as const;
type Panel = (typeof PANELS)[number];

function showPanel(panel: Panel): void {
  for (const id of PANELS) byId(id).hidden = id !== panel;
}

/** Shows a message above the forms (a link's result, a deletion...), or clears it with "". */
export function authNotice(text: string): void {
  const el = byId("auth-notice");
  el.textContent = text;
  el.hidden = text === "";
}

export function setUpAuth(onSignedIn: (api: ApiClient, user: UserView) => void, link?: MailedLink): void {
  const base = location.origin;
  /** The client and challenge of a login waiting for its second step. */
  let pending: { api: ApiClient; challenge: MfaChallenge } | undefined;

  handle(byId<HTMLFormElement>("login-form"), async (form) => {
    const api = new ApiClient(base);
    const login = field(form, "login").value.trim();
    const password = field(form, "password").value;
    const res = await api.login(
      login.includes("@") ? { email: login, password } : { username: login, password },
    );
    if (isMfaChallenge(res)) {
      pending = { api, challenge: res };
      field(form, "password").value = "";
      const mfa = byId<HTMLFormElement>("mfa-form");
      field(mfa, "code").value = "";
      showPanel("mfa-panel");
      field(mfa, "code").focus();
      return;
    }
    onSignedIn(api, res.user);
  });
  handle(byId<HTMLFormElement>("mfa-form"), async (form) => {
    if (!pending) {
      showPanel("auth-main");
      return;
    }
    const typed = field(form, "code").value.trim();
    const { api, challenge } = pending;
    // Six digits are an app code; anything else is taken for a recovery code (10 characters).
    const answer = /^\d{6}$/.test(typed.replace(/\s/g, ""))
      ? { mfaToken: challenge.mfaToken, code: typed.replace(/\s/g, "") }
      : { mfaToken: challenge.mfaToken, recoveryCode: typed };
    try {
      const res = await api.verifyMfa(answer);
      pending = undefined;
      onSignedIn(api, res.user);
    } catch (err) {
      // The challenge lives 5 minutes: once it is gone, start over with the password.
      if ((err as { code?: string }).code === "INVALID_MFA_TOKEN") {
        pending = undefined;
        showPanel("auth-main");
        showError(byId("login-error"), "The sign-in took too long. Enter your password again.");
        return;
      }
      throw err;
    }
  });
  byId("mfa-cancel").addEventListener("click", () => {
    pending = undefined;
    showPanel("auth-main");
  });

  byId("forgot-password").addEventListener("click", () => {
    const form = byId<HTMLFormElement>("forgot-form");
    const login = field(byId<HTMLFormElement>("login-form"), "login").value.trim();
    if (login.includes("@")) field(form, "email").value = login;
    byId("forgot-sent").textContent = "";
    showPanel("forgot-panel");
    field(form, "email").focus();
  });
  handle(byId<HTMLFormElement>("forgot-form"), async (form) => {
    const email = field(form, "email").value.trim();
    await new ApiClient(base).requestPasswordReset(email);
    byId("forgot-sent").textContent =
      "If an account has that address, a link to choose a new password is on its way to it. The link works for 30 minutes.";
  });
  for (const id of ["forgot-cancel", "reset-cancel"]) {
    byId(id).addEventListener("click", () => showPanel("auth-main"));
  }

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

  /** The token of the reset link the page was opened with. */
  let resetToken = "";
  handle(byId<HTMLFormElement>("reset-form"), async (form) => {
    const password = field(form, "password").value;
    if (password !== field(form, "confirm").value) throw new Error("The two passwords differ.");
    await new ApiClient(base).confirmPasswordReset(resetToken, password);
    form.reset();
    resetToken = "";
    showPanel("auth-main");
    authNotice("Your password was changed. Sign in with the new one.");
    field(byId<HTMLFormElement>("login-form"), "login").focus();
  });

  const follow = (link: MailedLink) => {
    authNotice("");
    if (link.kind === "verify-email") {
      void verifySignedOut(link.token);
      return;
    }
    resetToken = link.token;
    const form = byId<HTMLFormElement>("reset-form");
    form.reset();
    showPanel("reset-panel");
    field(form, "password").focus();
  };
  if (link) follow(link);
  // A link opened in this tab while signed out (only the fragment changes, the page stays).
  addEventListener("hashchange", () => {
    if (byId("auth-view").hidden) return;
    const next = takeMailedLink();
    if (next) follow(next);
  });
}

/** A verification link opened while signed out: posted at once, its result shown above the forms. */
async function verifySignedOut(token: string): Promise<void> {
  authNotice("Verifying your email address…");
  try {
    await new ApiClient(location.origin).verifyEmail(token);
    authNotice("Your email address is verified. Sign in to go on.");
  } catch (err) {
    authNotice(verifyFailure(err));
  }
}

/** What a refused verification link says. */
export function verifyFailure(err: unknown): string {
  const code = (err as { code?: string }).code;
  if (code === "INVALID_TOKEN") {
    return "This verification link is expired or was used already. Sign in and ask for a new one.";
  }
  if (code === "EMAIL_TAKEN") return "Another account has taken that address meanwhile: nothing was changed.";
  return `The address could not be verified: ${errorText(err)}`;
}

/** Submits a form once at a time; the form's role="alert" element shows what went wrong. */
export function handle(form: HTMLFormElement, submit: (form: HTMLFormElement) => Promise<void>): void {
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
