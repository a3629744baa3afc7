/**
 * The settings the HTTP layer reads, declared here so that http/ depends on what it uses rather
 * than on the process that starts it; the process's Config (src/main/config) extends it.
 */
import type { ExecutionProviderSetting } from '../ml/types.js'

export interface HttpConfig {
  /** when set, writes (and reads if `apiKeyReads`) need `Authorization: Bearer <apiKey>` */
  apiKey: string | undefined
  apiKeyReads: boolean
  /** requests per window and client under /v1; 0 disables rate limiting */
  rateLimitMax: number
  rateLimitWindowMs: number
  /** allowed CORS origins; undefined = CORS off, `true` = any origin */
  corsOrigin: string[] | true | undefined
  /** largest single uploaded file (multipart part or decoded base64 image), bytes */
  maxUploadBytes: number
  /** most image files in one POST /v1/images, /v1/search or /v1/classify request */
  maxFiles: number
  /** most files in one multipart POST /v1/index-jobs upload */
  maxJobFiles: number
  /** largest sum of all parts of one multipart request, bytes */
  maxUploadTotalBytes: number
  /** largest JSON request body, bytes */
  maxBodyBytes: number
  /** the configured ONNX execution provider, shown by /v1/info */
  executionProvider: ExecutionProviderSetting
}
