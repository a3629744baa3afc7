/** Listing stored images or texts page by page, and deleting those a metadata filter matches. */
import { BadRequestError } from '../core/errors.js'
import type { CollectionName, ListedRow } from '../backends/ports.js'
import type { MetadataFilter } from '../core/types.js'
import type { Core } from './core.js'

/** most rows in one listing page */
export const MAX_LIST_LIMIT = 1000
/** rows read per page while deleting by filter */
const DELETE_PAGE = 500

/** One page of rows in id order; pass the last row's id as `after` for the next page. */
export async function listRows (core: Core, collection: CollectionName, opts: { limit: number, after?: string, filter?: MetadataFilter }): Promise<ListedRow[]> {
  if (!Number.isInteger(opts.limit) || opts.limit < 1 || opts.limit > MAX_LIST_LIMIT) throw new BadRequestError(`limit must be an integer from 1 to ${MAX_LIST_LIMIT}`)
  return await core.backend[collection].list(opts)
}

/**
 * Deletes every row whose metadata matches `filter` exactly, e.g. {"demo": true} for the demo pool.
 * An empty filter is refused (it would delete everything). Each row goes as DELETE /v1/images/:id
 * would; resolves with how many were deleted.
 */
export async function deleteRows (core: Core, collection: CollectionName, filter: MetadataFilter): Promise<number> {
  if (Object.keys(filter).length === 0) throw new BadRequestError('a delete by filter needs at least one metadata key, e.g. {"demo":true}')
  const rows = core.backend[collection]
  let deleted = 0
  let after: string | undefined
  for (;;) {
    const page = await rows.list({ limit: DELETE_PAGE, filter, ...(after === undefined ? {} : { after }) })
    for (const r of page) if (await rows.remove(r.id)) deleted++
    if (page.length < DELETE_PAGE) return deleted
    after = page.at(-1)!.id
  }
}
