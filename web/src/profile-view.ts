/**
 * Editing one's own profile: display name, bio and avatar URL. The fields stay disabled until the
 * profile has loaded, so nothing typed is overwritten by it, and while a save is under way.
 */
import type { OwnProfile } from "../../client/types.ts";
import { field } from "./elements.ts";
import { showError } from "./errors.ts";
import type { Platform } from "./platform.ts";

export class ProfileView {
  private readonly view: HTMLElement;
  private readonly form: HTMLFormElement;
  private readonly platform: Platform;
  private readonly onSaved: (profile: OwnProfile) => void;
  private readonly error: HTMLElement;
  private readonly saved: HTMLElement;
  private readonly fields: HTMLFieldSetElement;
  /** Counts the showings, so a profile that arrives after the view was shown again is dropped. */
  private shown = 0;

  constructor(o: {
    view: HTMLElement;
    form: HTMLFormElement;
    platform: Platform;
    onSaved(profile: OwnProfile): void;
  }) {
    this.view = o.view;
    this.form = o.form;
    this.platform = o.platform;
    this.onSaved = o.onSaved;
    this.error = o.form.querySelector(".error") as HTMLElement;
    this.saved = o.form.querySelector(".saved") as HTMLElement;
    this.fields = o.form.querySelector("fieldset") as HTMLFieldSetElement;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.save();
    });
  }

  async show(): Promise<void> {
    const run = ++this.shown;
    this.view.hidden = false;
    this.fields.disabled = true;
    showError(this.error, "");
    this.saved.textContent = "";
    try {
      const profile = await this.platform.api.me();
      if (run !== this.shown) return;
      this.fill(profile);
      this.fields.disabled = false;
      field(this.form, "displayName").focus();
    } catch (err) {
      // Left disabled: a save now would overwrite the profile with empty fields.
      if (run === this.shown) showError(this.error, err);
    }
  }

  hide(): void {
    this.view.hidden = true;
  }

  private fill(profile: OwnProfile): void {
    field(this.form, "displayName").value = profile.displayName;
    field(this.form, "bio").value = profile.bio ?? "";
    field(this.form, "avatarUrl").value = profile.avatarUrl ?? "";
  }

  private async save(): Promise<void> {
    if (this.fields.disabled) return;
    const run = this.shown;
    this.fields.disabled = true;
    showError(this.error, "");
    this.saved.textContent = "";
    const bio = field(this.form, "bio").value.trim();
    const avatarUrl = field(this.form, "avatarUrl").value.trim();
    try {
      const profile = await this.platform.api.updateMe({
        displayName: field(this.form, "displayName").value.trim(),
        bio: bio || null,
        avatarUrl: avatarUrl || null,
      });
      this.platform.remember(profile);
      this.fill(profile);
      this.saved.textContent = "Profile saved.";
      this.onSaved(profile);
    } catch (err) {
      showError(this.error, err);
    } finally {
      // Unless the view was shown again meanwhile: its load enables the fields.
      if (run === this.shown) this.fields.disabled = false;
    }
  }
}
