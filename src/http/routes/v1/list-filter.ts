/** The `filter` query parameter of listings and deletes: a JSON object checked against the search filter's schema. */
import { Value } from '@sinclair/typebox/value'
import { BadRequestError } from '../../../core/errors.js'
import type { MetadataFilter } from '../../../core/types.js'
import { SearchFilter } from '../../schemas/search.js'

/** Parses `filter` (JSON); throws BadRequestError that shows the expected shape. */
export function parseFilter (raw: string | undefined): MetadataFilter | undefined {
  if (raw === undefined) return undefined
  let value: unknown
  try { value = JSON.parse(raw) } catch {
    throw new BadRequestError('querystring/filter must be a JSON object, e.g. filter={"demo":true}')
  }
  if (!Value.Check(SearchFilter, value)) {
    throw new BadRequestError('querystring/filter must be a JSON object of metadata keys to strings, numbers or booleans (at most 32 keys), e.g. filter={"demo":true}')
  }
  return value as MetadataFilter
}
