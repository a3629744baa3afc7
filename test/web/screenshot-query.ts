/**
 * The query of the README's screenshot (docs/screenshot.png), in one place: the script that makes the
 * screenshot and the page test both use it, and the page test checks that the README states it.
 * An image + text arithmetic query on the demo pool: the plain waving hand plus "dark skin tone".
 * Alone, the image finds waving hands in light tones and the text finds other dark-skin-tone emoji;
 * together they rank the waving hand in dark skin tone first (measured: 0.791, then emojione's, 0.771).
 */
export const SCREENSHOT_IMAGE_ID = 'twemoji-waving-hand'
export const SCREENSHOT_TEXT = 'dark skin tone'
/** what the page sends for it (PAGE_SIZE results, with per-term explanations) */
export const SCREENSHOT_BODY = {
  query: [{ imageId: SCREENSHOT_IMAGE_ID, weight: 1 }, { text: SCREENSHOT_TEXT, weight: 1 }],
  target: 'images',
  k: 24,
  explain: true
} as const
/** the page's own link for it */
export const SCREENSHOT_PAGE_QUERY = `?q=i:${SCREENSHOT_IMAGE_ID}&q=t:${encodeURIComponent(SCREENSHOT_TEXT)}`
/** how the README's caption states it */
export const SCREENSHOT_CAPTION_QUERY = `{"query":[{"imageId":"${SCREENSHOT_IMAGE_ID}"},{"text":"${SCREENSHOT_TEXT}"}]}`
