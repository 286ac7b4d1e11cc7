/**
 * Attachments: the composer's files (picked with the Attach button, dropped onto the conversation
 * or pasted), each uploaded at once with a progress bar, and the files a message carries as they
 * show in it: raster images as thumbnails that open the full image, audio and video as players
 * (seeking works through the server's Range support), anything else as a download link with its
 * name and size. File URLs carry the access token (elements cannot send a header), so a link gets
 * a fresh URL when it is used and an image or player that fails once tries again with one.
 */
import type { ApiClient } from "../../client/rest-client.ts";
import type { AttachmentView, UploadView } from "../../client/types.ts";
import { h } from "./elements.ts";
import { errorText, showError } from "./errors.ts";

/** The image types the server makes thumbnails of (and serves inline). */
export const RASTER_TYPES = new Set(["image/jpeg", "image/png", "image/gif", "image/webp", "image/avif"]);
/** Files one message may carry (the server's limit). */
export const MAX_ATTACHMENTS = 10;
/** The thumbnail size asked for, and the box an image preview fits in (px). */
const THUMB = 320;

/** A byte count as people read it: "812 bytes", "98 KB", "2.5 MB". */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} ${bytes === 1 ? "byte" : "bytes"}`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const shown =
    value < 10 && !Number.isInteger(Math.round(value * 10) / 10) ? value.toFixed(1) : Math.round(value);
  return `${shown} ${units[unit]}`;
}

/** What the page says when a file cannot be uploaded: the server's refusal in plain words. */
export function uploadErrorText(name: string, err: unknown): string {
  const e = err as { status?: number; code?: string; body?: unknown } | undefined;
  const details = ((e?.body as { error?: { details?: unknown } } | undefined)?.error?.details ??
    {}) as Record<string, unknown>;
  const quoted = `"${name}"`;
  switch (e?.code) {
    case "UPLOAD_TOO_LARGE": {
      const max = Number(details.maxBytes);
      return Number.isFinite(max) && max > 0
        ? `${quoted} is larger than the ${formatSize(max)} limit.`
        : `${quoted} is larger than the upload limit.`;
    }
    case "UPLOAD_QUOTA_EXCEEDED": {
      const quota = Number(details.quotaBytes);
      const used = Number(details.usedBytes);
      const left = Number(details.remainingBytes);
      if (Number.isFinite(quota) && Number.isFinite(used))
        return `${quoted} does not fit in your storage: ${formatSize(used)} of ${formatSize(quota)} used.`;
      if (Number.isFinite(left)) return `${quoted} does not fit in your storage: ${formatSize(left)} left.`;
      return `${quoted} does not fit in your storage.`;
    }
    case "UPLOAD_TYPE_NOT_ALLOWED": {
      const type = typeof details.contentType === "string" ? details.contentType : "";
      return type
        ? `${quoted} cannot be sent: files of type ${type} are not allowed.`
        : `${quoted} cannot be sent: files of its type are not allowed.`;
    }
  }
  return `${quoted} could not be uploaded: ${errorText(err)}`;
}

/** An attachment of a message as it shows in the message. */
export function attachmentList(attachments: readonly AttachmentView[], api: ApiClient): HTMLElement {
  return h(
    "ul",
    { class: "attachments", "aria-label": attachments.length === 1 ? "Attachment" : "Attachments" },
    ...attachments.map((a) => h("li", { class: "attachment" }, attachmentView(a, api))),
  );
}

function attachmentView(a: AttachmentView, api: ApiClient): HTMLElement {
  const label = `${a.name} (${formatSize(a.size)})`;
  if (RASTER_TYPES.has(a.contentType)) {
    const box = fit(a.width, a.height, THUMB);
    const img = h("img", {
      src: api.fileUrl(a, { thumb: THUMB }),
      alt: a.name,
      loading: "lazy",
      decoding: "async",
      ...(box ? { width: box.width, height: box.height } : {}),
    });
    retryWithFreshUrl(img, () => api.fileUrl(a, { thumb: THUMB }));
    const link = h(
      "a",
      {
        class: "attachment-image",
        href: api.fileUrl(a),
        target: "_blank",
        rel: "noopener",
        title: `Open ${label}`,
      },
      img,
    );
    freshLink(link, () => api.fileUrl(a));
    return link;
  }
  const media = a.contentType.startsWith("audio/")
    ? h("audio", { controls: true, preload: "metadata", src: api.fileUrl(a) })
    : a.contentType.startsWith("video/")
      ? h("video", {
          controls: true,
          preload: "metadata",
          playsinline: true,
          src: api.fileUrl(a),
          ...(fit(a.width, a.height, THUMB * 1.5) ?? {}),
        })
      : undefined;
  if (media) {
    media.setAttribute("aria-label", label);
    retryWithFreshUrl(media, () => api.fileUrl(a));
    return h(
      "figure",
      { class: media instanceof HTMLVideoElement ? "attachment-media video" : "attachment-media audio" },
      media,
      h(
        "figcaption",
        {},
        downloadLink(a, api, a.name),
        " ",
        h("span", { class: "file-size" }, formatSize(a.size)),
      ),
    );
  }
  return h(
    "p",
    { class: "attachment-file" },
    downloadLink(a, api, a.name, `Download ${label}`),
    " ",
    h("span", { class: "file-size" }, formatSize(a.size)),
  );
}

function downloadLink(
  a: AttachmentView,
  api: ApiClient,
  text: string,
  ariaLabel?: string,
): HTMLAnchorElement {
  const link = h(
    "a",
    { class: "file-link", href: api.fileUrl(a), download: a.name, "aria-label": ariaLabel },
    text,
  );
  freshLink(link, () => api.fileUrl(a));
  return link;
}

/** A link's URL is made again just before it is followed, with the token of that moment. */
function freshLink(link: HTMLAnchorElement, url: () => string): void {
  const refresh = () => {
    link.href = url();
  };
  for (const type of ["pointerdown", "focus", "click", "contextmenu"]) link.addEventListener(type, refresh);
}

/** An image or player whose URL failed (an expired token) tries once more with a fresh URL. */
function retryWithFreshUrl(el: HTMLImageElement | HTMLMediaElement, url: () => string): void {
  let retried = false;
  el.addEventListener("error", () => {
    const next = url();
    if (retried || next === el.getAttribute("src")) return;
    retried = true;
    el.setAttribute("src", next);
  });
}

/** width × height scaled down to fit a max × max box (undefined when unknown). */
function fit(width: number | undefined, height: number | undefined, max: number) {
  if (!width || !height) return undefined;
  const scale = Math.min(1, max / Math.max(width, height));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

interface Item {
  file: File;
  li: HTMLLIElement;
  progress: HTMLProgressElement;
  state: HTMLElement;
  status: "uploading" | "done" | "failed";
  upload?: UploadView;
  abort: AbortController;
  settled: Promise<void>;
}

/**
 * The files of the message being written: a tray above the composer with one row per file (name,
 * size, progress bar, state, Remove), filled by the Attach button (a file picker), by dropping
 * files onto `dropZone`, or by pasting files into the text box.
 */
export class AttachmentTray {
  private readonly api: ApiClient;
  private readonly text: HTMLTextAreaElement;
  private readonly error: HTMLElement;
  private readonly onChange: () => void;
  private readonly enabled: () => boolean;
  private readonly tray: HTMLUListElement;
  private readonly input: HTMLInputElement;
  private items: Item[] = [];
  private dragDepth = 0;

  constructor(o: {
    api: ApiClient;
    composer: HTMLFormElement;
    text: HTMLTextAreaElement;
    /** Where files may be dropped (the conversation). */
    dropZone: HTMLElement;
    /** The conversation's alert line, for refusals. */
    error: HTMLElement;
    /** The files changed: one was added, finished, failed or was removed. */
    onChange(): void;
    /** Whether files may be added now (a chat is open). */
    enabled(): boolean;
  }) {
    this.api = o.api;
    this.text = o.text;
    this.error = o.error;
    this.onChange = o.onChange;
    this.enabled = o.enabled;

    this.input = h("input", {
      type: "file",
      multiple: true,
      hidden: true,
      tabindex: -1,
      "aria-hidden": "true",
    });
    const attach = h(
      "button",
      {
        type: "button",
        class: "attach",
        "aria-label": "Attach files",
        title: "Attach files (or drop them here)",
      },
      "Attach",
    );
    attach.addEventListener("click", () => this.input.click());
    this.input.addEventListener("change", () => {
      this.add([...(this.input.files ?? [])]);
      this.input.value = "";
    });
    const submit = o.composer.querySelector('button[type="submit"]');
    o.composer.insertBefore(attach, submit);
    o.composer.append(this.input);
    this.tray = h("ul", { class: "uploads", "aria-label": "Files to send", hidden: true });
    o.composer.before(this.tray);

    const zone = o.dropZone;
    const hasFiles = (event: DragEvent) => event.dataTransfer?.types.includes("Files") ?? false;
    zone.addEventListener("dragenter", (event) => {
      if (!hasFiles(event) || !this.enabled()) return;
      event.preventDefault();
      this.dragDepth++;
      zone.classList.add("dropping");
    });
    zone.addEventListener("dragover", (event) => {
      if (!hasFiles(event) || !this.enabled()) return;
      event.preventDefault();
      if (event.dataTransfer) event.dataTransfer.dropEffect = "copy";
    });
    zone.addEventListener("dragleave", () => {
      this.dragDepth = Math.max(0, this.dragDepth - 1);
      if (this.dragDepth === 0) zone.classList.remove("dropping");
    });
    zone.addEventListener("drop", (event) => {
      this.dragDepth = 0;
      zone.classList.remove("dropping");
      if (!hasFiles(event) || !this.enabled()) return;
      event.preventDefault();
      this.add([...(event.dataTransfer?.files ?? [])]);
      this.text.focus();
    });
    this.text.addEventListener("paste", (event) => {
      const files = [...(event.clipboardData?.files ?? [])];
      if (files.length === 0 || !this.enabled()) return;
      event.preventDefault();
      this.add(files);
    });
  }

  /** Whether a file is still uploading. */
  get busy(): boolean {
    return this.items.some((i) => i.status === "uploading");
  }

  /** Whether there is a file that will go with the message (uploaded or uploading). */
  get hasFiles(): boolean {
    return this.items.some((i) => i.status !== "failed");
  }

  /** Whether a file failed since the tray was last cleared. */
  get hasFailed(): boolean {
    return this.items.some((i) => i.status === "failed");
  }

  /** The uploaded files, in the order they were added. */
  get ready(): UploadView[] {
    return this.items.flatMap((i) => (i.status === "done" && i.upload ? [i.upload] : []));
  }

  /** Resolves once no file is uploading. */
  async settled(): Promise<void> {
    while (this.busy) await Promise.all(this.items.map((i) => i.settled));
  }

  /** Adds files and starts uploading them; what cannot go (empty, too many) is refused at once. */
  add(files: File[]): void {
    const refused: string[] = [];
    for (const file of files) {
      const taken = this.items.filter((i) => i.status !== "failed").length;
      if (taken >= MAX_ATTACHMENTS) {
        refused.push(`"${file.name}" was not added: at most ${MAX_ATTACHMENTS} files go with one message.`);
        continue;
      }
      if (file.size === 0) {
        refused.push(`"${file.name}" is empty.`);
        continue;
      }
      this.start(file);
    }
    if (refused.length > 0) showError(this.error, refused.join(" "));
    this.changed();
  }

  /** Empties the tray, stopping the uploads still running. */
  clear(): void {
    for (const item of this.items) if (item.status === "uploading") item.abort.abort();
    this.items = [];
    this.tray.replaceChildren();
    this.changed();
  }

  private start(file: File): void {
    const progress = h("progress", { max: file.size, value: 0, "aria-label": `Uploading ${file.name}` });
    const state = h("span", { class: "upload-state" }, "Uploading…");
    const remove = h(
      "button",
      { type: "button", class: "link", "aria-label": `Remove ${file.name}` },
      "Remove",
    );
    const li = h(
      "li",
      { class: "upload uploading" },
      h("span", { class: "upload-name" }, file.name),
      " ",
      h("span", { class: "file-size" }, formatSize(file.size)),
      progress,
      state,
      remove,
    );
    const item: Item = {
      file,
      li,
      progress,
      state,
      status: "uploading",
      abort: new AbortController(),
      settled: Promise.resolve(),
    };
    remove.addEventListener("click", () => {
      if (item.status === "uploading") item.abort.abort();
      this.items = this.items.filter((i) => i !== item);
      li.remove();
      this.changed();
      this.text.focus();
    });
    item.settled = this.api
      .upload(file, {
        name: file.name,
        signal: item.abort.signal,
        onProgress: (loaded) => {
          progress.value = loaded;
          state.textContent = `Uploading… ${Math.floor((loaded / Math.max(1, file.size)) * 100)}%`;
        },
      })
      .then(
        (upload) => {
          item.upload = upload;
          item.status = "done";
          progress.value = file.size;
          state.textContent = "Uploaded";
          li.className = "upload done";
        },
        (err: unknown) => {
          item.status = "failed";
          li.className = "upload failed";
          progress.remove();
          if (item.abort.signal.aborted) return;
          const text = uploadErrorText(file.name, err);
          state.textContent = text;
          showError(this.error, text);
        },
      )
      .finally(() => this.changed());
    this.items.push(item);
    this.tray.append(li);
  }

  private changed(): void {
    this.tray.hidden = this.items.length === 0;
    this.onChange();
  }
}
