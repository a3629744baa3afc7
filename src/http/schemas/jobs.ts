/** /v1/index-jobs shapes. */
import { Type, type Static } from '@sinclair/typebox'
import { MAX_JOB_DUPLICATES, MAX_JOB_ERRORS } from '../../core/limits.js'
import { MAX_SKIPPED_PATHS } from '../../core/types.js'
import { BinaryPart, ItemId, Metadata } from './common.js'

export const JobItem = Type.Object({
  path: Type.String({ minLength: 1, maxLength: 4096, description: 'file path relative to IMPORT_DIR' }),
  id: Type.Optional(ItemId),
  metadata: Type.Optional(Metadata)
}, { additionalProperties: false })

/** Exactly one of items | directory (checked by the route, so the message is plain). */
export const JobBody = Type.Object({
  items: Type.Optional(Type.Array(JobItem, { minItems: 1, maxItems: 1_000_000, description: 'files under IMPORT_DIR to index' })),
  directory: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'a folder under IMPORT_DIR to index recursively' })),
  // no `default`: ajv would fill it in for items jobs too, which refuse it
  idFromPath: Type.Optional(Type.Boolean({
    description: 'directory jobs only: each file\'s id is its path relative to IMPORT_DIR, with "/" written as ":" and any other character an id may not hold as "_" (`holiday-2024/sub/beach.jpg` → `holiday-2024:sub:beach.jpg`); a path longer than 128 characters fails that file'
  }))
}, {
  additionalProperties: false,
  title: 'IndexJobRequest',
  description: 'exactly one of items or directory',
  examples: [{ directory: 'photos/2023' }, { directory: 'photos/2023', idFromPath: true }, { items: [{ path: 'a.jpg', id: 'a', metadata: { album: 'x' } }] }]
})
export type JobBodyT = Static<typeof JobBody>

/** multipart/form-data upload: many image files staged under DATA_DIR, indexed by a background job. */
export const JobForm = Type.Object({
  id: Type.Optional({ ...ItemId, description: 'id of the NEXT file part' }),
  metadata: Type.Optional(Type.String({ description: 'JSON object stored with the NEXT file part' })),
  file: Type.Optional({ ...BinaryPart, description: 'an image file; repeat for each file (the part name is free)' })
}, {
  additionalProperties: BinaryPart,
  description: 'up to MAX_JOB_FILES (default 1000) image files. Optional fields `id` and `metadata` apply to the file part that follows them.'
})

export const JobCreated = Type.Object({ jobId: Type.String() }, { title: 'IndexJobCreated' })
export type JobCreatedT = Static<typeof JobCreated>

export const JobView = Type.Object({
  id: Type.String(),
  status: Type.Union([Type.Literal('queued'), Type.Literal('running'), Type.Literal('done'), Type.Literal('failed'), Type.Literal('cancelled')]),
  total: Type.Integer({ description: 'items found so far' }),
  done: Type.Integer({ description: 'items processed without failure: indexed + duplicate (done + failed = items processed). Jobs counted before schema 2 have done but indexed = duplicate = 0 for those items' }),
  indexed: Type.Integer({ description: 'items stored as new images' }),
  duplicate: Type.Integer({ description: 'items whose bytes were already stored (in the index, or earlier in the same job): nothing new is stored, not even the id the item asked for; `duplicates` names the stored id' }),
  failed: Type.Integer({ description: 'items that could not be indexed; `errors` says why' }),
  errors: Type.Array(Type.Object({ item: Type.String(), error: Type.String() }), { description: `per-item errors (the first ${MAX_JOB_ERRORS})` }),
  duplicates: Type.Array(Type.Object({
    item: Type.String({ description: 'the file (path under IMPORT_DIR, or uploaded file name)' }),
    id: Type.String({ description: 'the id under which its bytes are stored' })
  }), { description: `duplicate items and the stored id each repeats (the first ${MAX_JOB_DUPLICATES})` }),
  skipped: Type.Object({
    notImage: Type.Integer({ description: 'files left out because their extension is not an image\'s (.txt, no extension, …)' }),
    unreadable: Type.Integer({ description: 'files left out because they cannot be read (permissions, a dangling symlink, a sub-folder that cannot be listed)' }),
    paths: Type.Array(Type.Object({
      path: Type.String({ description: 'relative to IMPORT_DIR' }),
      reason: Type.Union([Type.Literal('not an image'), Type.Literal('unreadable')])
    }), { description: `the first ${MAX_SKIPPED_PATHS} skipped files` })
  }, { description: 'directory jobs: files the listing left out, by reason (not counted in total)' }),
  demo: Type.Optional(Type.Literal(true, { description: 'the demo pool\'s job, queued on a first start' })),
  warning: Type.Optional(Type.String({ description: 'a directory job whose folder held no images: it indexed nothing, and this says why' })),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' })
}, { title: 'IndexJob' })
export type JobViewT = Static<typeof JobView>

export const JobParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) })

/** most jobs on one page of GET /v1/index-jobs, and how many when `limit` is not given */
export const MAX_JOBS_PAGE = 100
export const DEFAULT_JOBS_PAGE = 20

export const JobListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_JOBS_PAGE, default: DEFAULT_JOBS_PAGE, description: 'jobs per page' })),
  before: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'the `next` of the previous page: jobs created before that one' }))
}, { additionalProperties: false })
export type JobListQueryT = Static<typeof JobListQuery>

export const JobList = Type.Object({
  jobs: Type.Array(JobView, { description: 'newest first' }),
  next: Type.Union([Type.String(), Type.Null()], { description: 'pass as `before` for the next (older) page; null on the last page' })
}, { title: 'IndexJobList' })
export type JobListT = Static<typeof JobList>
