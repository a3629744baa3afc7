// @ts-check
/**
 * A node:test reporter that writes one JSON line per skipped test or suite: { file, name, reason }.
 * scripts/run-tests.ts runs it beside the spec reporter, so that a skip is counted and named in the
 * final summary instead of scrolling past among hundreds of lines.
 * Plain JavaScript: Node 20 loads reporters before `--import tsx` has registered its hooks.
 */
import path from 'node:path'

/**
 * @param {AsyncIterable<{ type: string, data: { name: string, file?: string, skip?: string | boolean } }>} source
 * @returns {AsyncGenerator<string>}
 */
export default async function * skippedTests (source) {
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue
    const { name, file, skip } = event.data
    if (skip === undefined || skip === false) continue
    yield JSON.stringify({
      file: file === undefined ? '' : path.relative(process.cwd(), file),
      name,
      reason: typeof skip === 'string' ? skip : ''
    }) + '\n'
  }
}
