/** The core services: what src/plugins/services.ts, the CLI and the benchmarks open. */
export { openServices, MAX_BATCH_ITEMS } from './open-services.js'
export type { ServicesConfig } from './config.js'
export { ingestImages, contentId } from './ingest-images.js'
export { search, combineTerms, checkSearchRequest, MAX_K, MAX_TERMS } from './search.js'
export { classify, MAX_LABELS } from './classify.js'
export { addTexts, MAX_TEXT_CHARS } from './texts.js'
export type * from './types.js'
