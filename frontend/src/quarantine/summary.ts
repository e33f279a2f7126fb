/** The held-images page's words, apart from the DOM so that they can be unit-tested. */

/** What the page says of the held images: ``total`` held, ``shown`` of them listed (the list
 * API answers the oldest 500). */
export function heldSummary(total: number, shown: number = total): string {
  if (total === 0) return "No images are held for review.";
  const held = total === 1 ? "1 image is held for review." : `${total} images are held for review.`;
  return shown < total ? `${held} The oldest ${shown} are shown; decide on them to see the rest.` : held;
}
