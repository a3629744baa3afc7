/** Which model's store each vector of a written row goes to: the same rule on both backends. */
import { ConflictError } from '../core/errors.js'
import type { ModelVector } from './ports.js'

/**
 * The vector for the active model and, when the row carries it, the one for the standby model. A row
 * encoded by a model that is no longer active (a swap happened while it was encoded) is refused
 * (ConflictError) unless it carries the active model's vector as well.
 */
export function vectorsByModel (row: { embedding: Float32Array, modelId?: string, alt?: ModelVector }, activeModelId: string, standbyModelId: string | undefined): { active: Float32Array, standby?: Float32Array } {
  let active = row.embedding
  let other = row.alt
  if (row.modelId !== undefined && row.modelId !== activeModelId) {
    if (other?.modelId !== activeModelId) throw new ConflictError(`the active model changed to ${activeModelId} during this write; retry`)
    active = other.embedding
    other = { modelId: row.modelId, embedding: row.embedding }
  }
  return other !== undefined && standbyModelId !== undefined && other.modelId === standbyModelId ? { active, standby: other.embedding } : { active }
}
