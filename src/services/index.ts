/** The core services: what src/http/plugins/services.ts, the CLI and the benchmarks open. */
export { openServices, MAX_BATCH_ITEMS } from '../main/wiring/open-services.js'
export type { ServicesConfig } from '../main/wiring/services-config.js'
export { ingestImages, contentId, type IngestOptions } from './ingest-images.js'
export { search, combineTerms, checkSearchRequest } from './search.js'
export { classify } from './classify.js'
export { addTexts } from './texts.js'
export type * from './types.js'
