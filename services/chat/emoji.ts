/**
 * What a reaction may be: one emoji, as Unicode's RGI set names them (the sequences every platform
 * draws as one picture: skin tones, ZWJ families, flags, keycaps). A character that is an emoji
 * only in its emoji presentation ("❤" without U+FE0F) is taken as that presentation, so "❤" and
 * "❤️" are one reaction, not two.
 */
const RGI_EMOJI = /^\p{RGI_Emoji}$/v;
const VARIATION_SELECTOR_16 = "\uFE0F";

/** The emoji in its canonical form, or null when the text is not exactly one emoji. */
export function normalizeEmoji(text: string): string | null {
  if (text.length === 0 || text.length > 64) return null;
  if (RGI_EMOJI.test(text)) return text;
  const presented = text + VARIATION_SELECTOR_16;
  return RGI_EMOJI.test(presented) ? presented : null;
}
