/**
 * Every fixed limit and default that more than one layer states. Each has exactly one definition
 * here: the request schemas (and so openapi.yaml), the services that the CLI and tests call
 * directly, the config defaults and the page all take it from this module, so which limit applies
 * never depends on the path a request took. It imports nothing, so every layer may import it.
 * Limits an operator can change live in src/main/config/config.ts (MAX_FILES, MAX_UPLOAD_BYTES, …).
 */

/** longest text of a query term, a pool text or an embed text, characters (the tokenizer truncates to the model's max_text_length anyway) */
export const MAX_TEXT_CHARS = 2000
/** most terms in one search query */
export const MAX_QUERY_TERMS = 16
/** largest `k` of a search */
export const MAX_K = 1000
/** fewest labels in one classify request: the probabilities are a softmax over the labels, so one label always gets 1 */
export const MIN_LABELS = 2
/** most labels in one classify request */
export const MAX_LABELS = 100
/** longest classify label, characters */
export const MAX_LABEL_CHARS = 200
/** most texts in one POST /v1/texts (addTexts) call */
export const MAX_TEXTS_PER_CALL = 1000
/** failures a job lists in `errors` (its `failed` count stays exact beyond that) */
export const MAX_JOB_ERRORS = 1000
/** duplicate items a job lists in `duplicates`, item → stored id (its `duplicate` count stays exact beyond that) */
export const MAX_JOB_DUPLICATES = 1000
/** most texts, and most images, in one POST /v1/embed call */
export const MAX_EMBED_TEXTS = 256
export const MAX_EMBED_IMAGES = 64

/**
 * HNSW defaults (HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH).
 * - `M` 16: links per node; more = better recall, more memory (≈ M·8 bytes/vector) and slower inserts.
 * - `efConstruction` 200: candidate list while inserting; more = better graph, slower inserts.
 * - `efSearch` 64: candidate list while searching (raised to at least k); more = better recall, slower queries.
 */
export const DEFAULT_HNSW = Object.freeze({ M: 16, efConstruction: 200, efSearch: 64 })

/** nice value (0–19) of the child process in which index jobs decode and encode (INDEX_JOB_NICE) */
export const DEFAULT_INDEX_JOB_NICE = 19

/** images per index-job batch (INDEX_BATCH_SIZE): the unit read, encoded and committed at once */
export const DEFAULT_INDEX_BATCH_SIZE = 32

/**
 * Cluster mode: a batch whose worker died (SIGKILL, a lost machine) is retried by another worker
 * within this time (INDEX_RETRY_AFTER). Live workers keep their batches with a heartbeat, so a
 * batch may take longer than this.
 */
export const DEFAULT_INDEX_RETRY_AFTER_MS = 30_000
