/** Editing one's own profile: display name, bio and avatar URL. */
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
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.save();
    });
  }

  async show(): Promise<void> {
    this.view.hidden = false;
    showError(this.error, "");
    this.saved.textContent = "";
    try {
      this.fill(await this.platform.api.me());
    } catch (err) {
      showError(this.error, err);
    }
    field(this.form, "displayName").focus();
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
    }
  }
}
