/** The use cases and the Services facade over them; src/main/wiring opens them. */
export { servicesFacade, MAX_BATCH_ITEMS } from './services-facade.js'
export { ingestImages, contentId, type IngestOptions } from './ingest-images.js'
export { search, combineTerms, checkSearchRequest } from './search.js'
export { classify } from './classify.js'
export { addTexts } from './texts.js'
export type * from './types.js'
