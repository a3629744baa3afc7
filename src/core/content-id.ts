/** Ids for rows stored without one. */

/** An id made from the content hash: the same file gets the same id. */
export function contentId (sha: string): string {
  return sha.slice(0, 24)
}
