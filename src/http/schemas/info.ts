/** GET /v1/info, /health, /ready shapes. */
import { Type, type Static } from '@sinclair/typebox'
import { StringEnum } from './common.js'

export const InfoResponse = Type.Object({
  version: Type.String({ description: 'align-search version' }),
  model: Type.Object({
    name: Type.String(),
    modelId: Type.String(),
    dim: Type.Integer({ description: 'embedding dimension' }),
    temperature: Type.Number({ description: 'contrastive softmax temperature' }),
    promptTemplate: Type.String(),
    maxTextLength: Type.Integer({ description: 'tokens per text; longer texts are truncated' }),
    license: Type.String(),
    source: Type.String()
  }),
  standby: Type.Union([Type.Object({
    modelId: Type.String(),
    dim: Type.Integer(),
    state: StringEnum(['building', 'ready'], { description: 'building: a switch is embedding into it; ready: complete, a swap away (POST /v1/models/swap)' })
  }), Type.Null()], { description: 'the model on standby beside the active one (GET /v1/models has the details); null when none' }),
  backend: StringEnum(['sqlite', 'postgres'], { description: 'the storage backend: embedded SQLite + hnswlib, or PostgreSQL + pgvector' }),
  counts: Type.Object({
    images: Type.Integer(),
    texts: Type.Integer(),
    exact: Type.Boolean({ description: 'false when the counts are the planner\'s estimate (PostgreSQL tables of 100k rows or more): count(*) would read the whole table on every call' })
  }),
  index: Type.Object({
    kind: Type.String({ description: 'the vector index, e.g. "hnswlib"' }),
    M: Type.Integer(),
    efConstruction: Type.Integer(),
    efSearch: Type.Integer(),
    capacity: Type.Union([Type.Integer(), Type.Null()], { description: 'allocated capacity (hnswlib); null where the index grows by itself' }),
    vectorType: Type.Optional(StringEnum(['vector', 'halfvec'], { description: 'PostgreSQL: how the index stores vectors, from the database\'s index record' })),
    settingsIgnored: Type.Optional(Type.Array(Type.String(), { description: 'PostgreSQL: settings of this process that differ from the database\'s index record; the process follows the database (change the index with npm run db:reindex)' })),
    distance: Type.Literal('cosine')
  }),
  executionProvider: Type.Union([Type.Literal('cpu'), Type.Literal('cuda'), Type.Literal('cuda,cpu')], { description: 'requested ONNX execution provider(s), in the order tried (EXECUTION_PROVIDER)' }),
  limits: Type.Object({
    maxUploadBytes: Type.Integer(),
    maxFiles: Type.Integer(),
    maxJobFiles: Type.Integer(),
    maxBodyBytes: Type.Integer()
  }),
  auth: Type.Object({ writes: Type.Boolean({ description: 'writes need an API key' }), reads: Type.Boolean({ description: 'reads need an API key' }) })
}, { title: 'Info' })
export type InfoResponseT = Static<typeof InfoResponse>

export const HealthResponse = Type.Object({ status: Type.Literal('ok') })
export const ReadyResponse = Type.Object({ status: Type.Literal('ready') })
