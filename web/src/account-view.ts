/**
 * Account settings (opened from the profile view): password and email changes, two-factor
 * authentication (setup with a QR code, the recovery codes shown once, turning it off), push
 * notifications, the data export and deleting the account.
 */
import type { AccountView } from "../../client/types.ts";
import { handle } from "./auth-view.ts";
import { byId, field, h } from "./elements.ts";
import { showError } from "./errors.ts";
import type { Platform } from "./platform.ts";
import { currentSubscription, disablePush, enablePush, pushSupported } from "./push.ts";
import { qrCode } from "./qr.ts";

export class AccountSettings {
  private readonly platform: Platform;
  private readonly view = byId("account-view");
  private readonly error = byId("account-error");
  private account: AccountView | undefined;
  private readonly onDeleted: () => void;

  constructor(o: { platform: Platform; onDeleted(): void }) {
    this.platform = o.platform;
    this.onDeleted = o.onDeleted;
    const api = this.platform.api;

    handle(byId<HTMLFormElement>("password-form"), async (form) => {
      saved(form, "");
      await api.changePassword(field(form, "currentPassword").value, field(form, "newPassword").value);
      form.reset();
      saved(form, "Password changed. Your other sessions were signed out.");
    });
    handle(byId<HTMLFormElement>("email-form"), async (form) => {
      saved(form, "");
      const newEmail = field(form, "newEmail").value.trim();
      await api.changeEmail(newEmail, field(form, "password").value);
      form.reset();
      saved(form, `A link was mailed to ${newEmail}: the address changes once you follow it.`);
    });

    byId("mfa-start").addEventListener("click", () => void this.startMfa());
    handle(byId<HTMLFormElement>("mfa-enable-form"), async (form) => {
      const { recoveryCodes } = await api.mfaEnable(field(form, "code").value.trim());
      form.reset();
      byId("mfa-setup").hidden = true;
      byId("mfa-qr").replaceChildren();
      byId("mfa-secret").textContent = "";
      byId("recovery-codes").replaceChildren(...recoveryCodes.map((code) => h("li", {}, code)));
      byId("mfa-codes").hidden = false;
      await this.load();
    });
    handle(byId<HTMLFormElement>("mfa-disable-form"), async (form) => {
      await api.mfaDisable(field(form, "password").value, field(form, "code").value.trim());
      form.reset();
      byId("mfa-codes").hidden = true;
      await this.load();
    });

    byId("push-on").addEventListener("click", () => void this.push(true));
    byId("push-off").addEventListener("click", () => void this.push(false));
    byId("export-data").addEventListener("click", () => void this.exportData());

    handle(byId<HTMLFormElement>("delete-form"), async (form) => {
      const confirmed = (form.elements.namedItem("confirm") as HTMLInputElement).checked;
      if (!confirmed) throw new Error("Tick “Yes, delete my account” first.");
      const code = field(form, "code").value.trim();
      const eraseMessages = (form.elements.namedItem("eraseMessages") as HTMLInputElement).checked;
      await api.deleteAccount({
        password: field(form, "password").value,
        ...(this.account?.mfaEnabled ? { code } : {}),
        eraseMessages,
      });
      this.onDeleted();
    });
  }

  async show(): Promise<void> {
    this.view.hidden = false;
    showError(this.error, "");
    byId("mfa-codes").hidden = true;
    byId("account-title").focus();
    await this.load();
    await this.showPush();
  }

  hide(): void {
    this.view.hidden = true;
  }

  get hidden(): boolean {
    return this.view.hidden === true;
  }

  /** Reads the account and shows what each section offers for it. */
  private async load(): Promise<void> {
    try {
      const account = await this.platform.api.account();
      this.account = account;
      byId("account-summary").textContent = `Signed in with ${account.email}${
        account.emailVerified ? " (verified)" : " (not verified yet)"
      }.`;
      byId("mfa-state").textContent = account.mfaEnabled
        ? `On. Recovery codes left: ${account.recoveryCodesLeft}.`
        : "Off: signing in takes only your password.";
      byId("mfa-start").hidden = account.mfaEnabled;
      if (account.mfaEnabled) byId("mfa-setup").hidden = true;
      byId("mfa-disable-form").hidden = !account.mfaEnabled;
      byId("delete-code-label").hidden = !account.mfaEnabled;
    } catch (err) {
      showError(this.error, err);
    }
  }

  private async startMfa(): Promise<void> {
    showError(this.error, "");
    try {
      const { secret, uri } = await this.platform.api.mfaSetup();
      byId("mfa-qr").replaceChildren(qrCode(uri, "QR code of the two-factor key"));
      byId("mfa-secret").textContent = secret;
      byId("mfa-codes").hidden = true;
      byId("mfa-setup").hidden = false;
      field(byId<HTMLFormElement>("mfa-enable-form"), "code").focus();
    } catch (err) {
      showError(this.error, err);
    }
  }

  private async showPush(): Promise<void> {
    const state = byId("push-state");
    const on = byId<HTMLButtonElement>("push-on");
    const off = byId<HTMLButtonElement>("push-off");
    if (!pushSupported()) {
      state.textContent = "This browser cannot show notifications while the app is closed.";
      on.hidden = true;
      off.hidden = true;
      return;
    }
    const sub = await currentSubscription().catch(() => null);
    state.textContent = sub ? "You get notifications while the app is closed." : "";
    on.hidden = Boolean(sub);
    off.hidden = !sub;
  }

  private async push(enable: boolean): Promise<void> {
    const error = byId("push-error");
    showError(error, "");
    try {
      if (enable) await enablePush(this.platform.api);
      else await disablePush(this.platform.api);
    } catch (err) {
      showError(error, err);
    }
    await this.showPush();
  }

  private async exportData(): Promise<void> {
    const button = byId<HTMLButtonElement>("export-data");
    const status = byId("export-status");
    const error = byId("export-error");
    showError(error, "");
    button.disabled = true;
    status.textContent = "Preparing your data…";
    try {
      const data = await this.platform.api.exportData();
      const url = URL.createObjectURL(
        new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }),
      );
      const link = h("a", { href: url, download: "export.json", hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      status.textContent = "Your data was downloaded as export.json.";
    } catch (err) {
      status.textContent = "";
      showError(error, err);
    } finally {
      button.disabled = false;
    }
  }
}

function saved(form: HTMLFormElement, text: string): void {
  const el = form.querySelector(".saved");
  if (el) el.textContent = text;
}
