/** Row ids (images, texts): 1–128 characters from [A-Za-z0-9._:-], so they are safe in URLs and logs. */
export const ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/

/** undefined when `id` is a valid id, else what is wrong with it */
export function idProblem (id: unknown): string | undefined {
  if (typeof id !== 'string') return 'must be a string'
  if (id.length === 0 || id.length > 128) return `must be 1–128 characters, got ${id.length}`
  if (!ID_PATTERN.test(id)) return 'may only contain letters, digits, ".", "_", ":" and "-"'
  return undefined
}
