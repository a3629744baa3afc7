/**
 * The PostgreSQL backend's model slots (ports.ts ModelSlots). The standby model's vectors live in a
 * column of their own, `standby_embedding vector(D')` of images and texts (any dimension), added
 * when a switch begins; their HNSW index is built CONCURRENTLY beside the active one before the
 * swap (the db:reindex step, index-settings.ts). The index record (model-records.ts) names the
 * model of each column.
 *
 * The swap is one transaction: the record's rows trade places and the two columns (and their
 * indexes) trade names, which is catalog work only, however many rows there are. It is announced
 * with NOTIFY, so every process re-reads the record at once (and every RECORD_REFRESH_MS anyway),
 * points its searches at the new dimension and tells its listeners (the services exchange their
 * encoders), all in one tick.
 *
 * Every process that embeds fills the standby column together (README "Changing the model"): each
 * claims a batch of rows it lacks in model_switch_claims (migration 0011) before embedding them, and
 * renews its claims while it embeds; a claim that lapses (its holder died) is claimed by the next
 * process that asks. Only the claims table is written at claim time: images and texts are never
 * locked across an embed.
 */
import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import pg from 'pg'
import { ConflictError, NotFoundError } from '../../core/errors.js'
import { DEFAULT_INDEX_RETRY_AFTER_MS } from '../../core/limits.js'
import type { Logger } from '../../core/types.js'
import type { CollectionName, ModelSlots, ReembedImage, ReembedText, StandbyRecord, BackendIdentity, TextTemplate } from '../ports.js'
import { hnswIndexName, RECORD_REFRESH_MS, storedIndexParams, VECTOR_TABLES, type IndexRecord, type VectorTable } from './index-settings.js'
import { hasStandbyColumn, MODELS_CHANNEL, readModelState, STANDBY_COLUMN, writeStandbyRow, type ModelState } from './model-records.js'
import { connectionConfig, withTransaction } from './pg-pool.js'
import { fromVectorLiteral, toVectorLiteral, type SearchSettings } from './pg-vector-search.js'
import type { ConnectionTimeouts } from './postgres-options.js'

/** the standby column's index (after a swap it is the active index, and is renamed so) */
export function standbyIndexName (table: VectorTable, vectorType: IndexRecord['vectorType']): string {
  return `${table}_${STANDBY_COLUMN}_${vectorType}_hnsw`
}

/** advisory lock key of the process that runs a switch (distinct from db:reindex's, node-pg-migrate's and the queue's) */
const SWITCH_LOCK = '7423991052018744011'
/** advisory lock key taken by each claim's transaction, so claimers take turns (a few ms each) and never pick the same rows */
const CLAIM_LOCK = '7423991052018744012'

export interface PgModelSlotsOptions {
  databaseUrl: string
  timeouts?: ConnectionTimeouts | undefined
  /** the search settings of images and texts: their dimension and vector type follow the active slot */
  settings: Record<VectorTable, SearchSettings>
  logger?: Logger | undefined
  /** how often the record is re-read besides the notifications, ms (default RECORD_REFRESH_MS) */
  refreshMs?: number | undefined
  /**
   * a switch's claim of rows to embed lapses this long after its holder's last renewal (renewed
   * every third of it), ms; default half of DEFAULT_INDEX_RETRY_AFTER_MS, as the index queue's batches
   */
  claimLeaseMs?: number | undefined
}

export class PgModelSlots implements ModelSlots {
  private listeners = new Set<() => void>()
  private listener: pg.Client | undefined
  private timer: NodeJS.Timeout | undefined
  /** where `missing` reads on from (ids in order), per table: a switch reads each table once through its primary key */
  private cursor: Record<VectorTable, string | undefined> = { images: undefined, texts: undefined }
  private closed = false
  /** who holds this process's claims (model_switch_claims.holder): the machine, the process, and this object */
  readonly holder = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`
  /** the rows this process claimed and has not stored yet ("table/id"): their claims are renewed */
  private held = new Set<string>()
  private renewal: NodeJS.Timeout | undefined
  private get leaseMs (): number { return Math.max(300, Math.round(this.opts.claimLeaseMs ?? DEFAULT_INDEX_RETRY_AFTER_MS / 2)) }

  private constructor (private readonly pool: pg.Pool, private readonly opts: PgModelSlotsOptions, private state: ModelState) {
    this.applySettings()
  }

  /** Reads the record and follows it: NOTIFY on MODELS_CHANNEL, and a re-read every refreshMs. */
  static async open (pool: pg.Pool, opts: PgModelSlotsOptions): Promise<PgModelSlots> {
    const slots = new PgModelSlots(pool, opts, await readModelState(pool))
    await slots.listen()
    slots.timer = setInterval(() => { void slots.refresh().catch(() => {}) }, opts.refreshMs ?? RECORD_REFRESH_MS)
    slots.timer.unref()
    return slots
  }

  /** Calls `fn` (synchronously, in the tick the record's change is seen) whenever another process changes the slots. */
  onChange (fn: () => void): void { this.listeners.add(fn) }

  active (): BackendIdentity & { modelDir?: string } {
    const a = this.state.active
    return { modelId: a.modelId, dim: a.dim, ...(a.modelDir === undefined ? {} : { modelDir: a.modelDir }) }
  }

  standby (): StandbyRecord | undefined { return this.state.standby?.record }

  /** Re-reads the record; a change applies to the searches and reaches the listeners in the same tick. */
  async refresh (): Promise<void> {
    const next = await readModelState(this.pool)
    if (JSON.stringify(next) === JSON.stringify(this.state)) return
    this.adopt(next)
  }

  async beginStandby (rec: StandbyRecord): Promise<void> {
    const next = await withTransaction(this.pool, async (c) => {
      const state = await readModelState(c, 'update')
      const current = state.standby
      if (current !== undefined && (current.modelId !== rec.modelId || current.dim !== rec.dim)) {
        for (const t of VECTOR_TABLES) await c.query(`ALTER TABLE ${t} DROP COLUMN IF EXISTS ${STANDBY_COLUMN}`)
      }
      for (const t of VECTOR_TABLES) {
        if (!(await hasStandbyColumn(c, t))) await c.query(`ALTER TABLE ${t} ADD COLUMN ${STANDBY_COLUMN} vector(${Number(rec.dim)})`)
      }
      // claims of another model's switch are void (a switch resumed keeps its own)
      if (current?.modelId !== rec.modelId) await c.query('DELETE FROM model_switch_claims')
      await writeStandbyRow(c, current !== undefined && current.modelId === rec.modelId ? current : state.active, rec)
      await c.query(`NOTIFY ${MODELS_CHANNEL}`)
      return await readModelState(c)
    })
    this.cursor = { images: undefined, texts: undefined }
    this.adopt(next)
  }

  /** Claims up to `limit` rows the standby column lacks that no other process holds a live claim on (ports.ts). */
  async missing (table: CollectionName, limit: number): Promise<string[]> {
    if (this.state.standby === undefined) return []
    let rows = await this.claim(table, this.cursor[table] ?? '', limit)
    // rows stored before the cursor meanwhile without this model's vector, or whose claim lapsed: once more from the start
    if (rows.length === 0 && this.cursor[table] !== undefined) rows = await this.claim(table, '', limit)
    const ids = rows.map((r) => r.id)
    this.cursor[table] = ids[ids.length - 1]
    for (const id of ids) this.held.add(`${table}/${id}`)
    if (ids.length > 0) this.renewal ??= setInterval(() => { void this.renew().catch(() => {}) }, Math.floor(this.leaseMs / 3)).unref()
    const lapsed = [...new Set(rows.flatMap((r) => r.lapsed === null ? [] : [r.lapsed]))]
    if (lapsed.length > 0) {
      this.opts.logger?.info({ table, rows: rows.filter((r) => r.lapsed !== null).length, from: lapsed, holder: this.holder },
        'model switch: claimed rows another process had claimed and stopped renewing (it stopped); embedding them here')
    }
    return ids
  }

  async claimsLive (): Promise<boolean> {
    const r = await this.pool.query<{ live: boolean }>('SELECT EXISTS (SELECT 1 FROM model_switch_claims WHERE expires_at > clock_timestamp()) AS live')
    return r.rows[0]?.live === true
  }

  async unclaim (): Promise<void> {
    this.stopRenewal()
    await this.pool.query('DELETE FROM model_switch_claims WHERE holder = $1', [this.holder])
  }

  async missingCount (table: CollectionName): Promise<number> {
    if (this.state.standby === undefined) return 0
    const r = await this.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE ${STANDBY_COLUMN} IS NULL`)
    return r.rows[0]?.n ?? 0
  }

  async weakImages (minSide: number): Promise<Array<{ id: string, sha256: string, source: string | null }>> {
    // a preview as large as the image itself is the image: never weak
    const r = await this.pool.query<{ id: string, sha256: string, source: string | null }>(
      `SELECT id, sha256, source FROM images WHERE original IS NULL
         AND (preview IS NULL OR (LEAST(preview_width, preview_height) < $1 AND LEAST(preview_width, preview_height) < LEAST(width, height)))
       ORDER BY id`, [minSide])
    return r.rows
  }

  async images (ids: string[]): Promise<ReembedImage[]> {
    if (ids.length === 0) return []
    const r = await this.pool.query<{ id: string, sha256: string, source: string | null, width: number, height: number, preview: Buffer | null, preview_width: number | null, preview_height: number | null, original: Buffer | null }>(
      'SELECT id, sha256, source, width, height, preview, preview_width, preview_height, original FROM images WHERE id = ANY($1::text[])', [ids])
    const byId = new Map(r.rows.map((row) => [row.id, row]))
    return ids.flatMap((id) => {
      const row = byId.get(id)
      if (row === undefined) return []
      return [{
        id: row.id,
        sha256: row.sha256,
        source: row.source,
        width: row.width,
        height: row.height,
        original: row.original,
        preview: row.preview === null ? null : { bytes: row.preview, width: row.preview_width ?? 0, height: row.preview_height ?? 0 }
      }]
    })
  }

  async texts (ids: string[]): Promise<ReembedText[]> {
    if (ids.length === 0) return []
    const r = await this.pool.query<{ id: string, text: string, template: TextTemplate }>('SELECT id, text, template FROM texts WHERE id = ANY($1::text[])', [ids])
    const byId = new Map(r.rows.map((row) => [row.id, row]))
    return ids.flatMap((id) => {
      const row = byId.get(id)
      return row === undefined ? [] : [{ id: row.id, text: row.text, template: row.template ?? null }]
    })
  }

  async putStandby (table: CollectionName, rows: Array<{ id: string, embedding: Float32Array }>, model?: string): Promise<void> {
    if (rows.length === 0) return
    await withTransaction(this.pool, async (c) => {
      const state = await readModelState(c, 'share')
      if (state.standby === undefined) throw new ConflictError('there is no standby model')
      if (model !== undefined && state.standby.modelId !== model) throw new ConflictError(`the standby model is now ${state.standby.modelId}, not ${model}`)
      for (const r of rows) {
        if (r.embedding.length !== state.standby.dim) throw new ConflictError(`the standby model is now ${state.standby.modelId} (dim ${state.standby.dim}); a vector of ${r.embedding.length} dims is not its`)
      }
      // ids deleted meanwhile match nothing: skipped
      await c.query(
        `UPDATE ${table} t SET ${STANDBY_COLUMN} = u.e::vector FROM unnest($1::text[], $2::text[]) AS u(id, e) WHERE t.id = u.id`,
        [rows.map((r) => r.id), rows.map((r) => toVectorLiteral(r.embedding))])
      // whoever held them: the rows are filled
      await c.query('DELETE FROM model_switch_claims WHERE tbl = $1 AND id = ANY($2::text[])', [table, rows.map((r) => r.id)])
    })
    for (const r of rows) this.held.delete(`${table}/${r.id}`)
    if (this.held.size === 0) this.stopRenewal()
  }

  async standbyEmbedding (table: CollectionName, id: string): Promise<Float32Array | undefined> {
    if (this.state.standby === undefined) return undefined
    const r = await this.pool.query<{ e: string | null }>(`SELECT ${STANDBY_COLUMN}::text AS e FROM ${table} WHERE id = $1`, [id])
    const e = r.rows[0]?.e
    return e === undefined || e === null ? undefined : fromVectorLiteral(e)
  }

  /**
   * Builds the standby column's HNSW indexes where missing (CONCURRENTLY: writes go on), then swaps
   * in one transaction. A swap another process made first is followed instead.
   */
  async swap (onSwapped?: () => void): Promise<StandbyRecord> {
    const expected = this.state.standby
    if (expected === undefined) throw new NotFoundError('there is no standby model to swap to')
    await this.buildStandbyIndexes(expected)
    const result = await withTransaction(this.pool, async (c) => {
      const state = await readModelState(c, 'update')
      const standby = state.standby
      if (standby === undefined || standby.modelId !== expected.modelId) return { moved: true as const, state }
      for (const t of VECTOR_TABLES) {
        const r = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${t} WHERE ${STANDBY_COLUMN} IS NULL`)
        const missing = r.rows[0]?.n ?? 0
        if (missing > 0) throw new ConflictError(`the switch to ${standby.modelId} is not complete: ${missing} ${t} have no vector of it yet`)
      }
      for (const t of VECTOR_TABLES) {
        const activeIndex = hnswIndexName(t, state.active.vectorType)
        const standbyIndex = standbyIndexName(t, standby.vectorType)
        await c.query(`ALTER TABLE ${t} ALTER COLUMN embedding DROP NOT NULL`)
        await c.query(`ALTER TABLE ${t} RENAME COLUMN embedding TO embedding_swap`)
        await c.query(`ALTER TABLE ${t} RENAME COLUMN ${STANDBY_COLUMN} TO embedding`)
        await c.query(`ALTER TABLE ${t} RENAME COLUMN embedding_swap TO ${STANDBY_COLUMN}`)
        await c.query(`ALTER INDEX IF EXISTS ${activeIndex} RENAME TO ${t}_swap_hnsw`)
        await c.query(`ALTER INDEX ${standbyIndex} RENAME TO ${hnswIndexName(t, standby.vectorType)}`)
        await c.query(`ALTER INDEX IF EXISTS ${t}_swap_hnsw RENAME TO ${standbyIndexName(t, state.active.vectorType)}`)
      }
      const previous: StandbyRecord = {
        modelId: state.active.modelId,
        dim: state.active.dim,
        ...(state.active.modelDir === undefined ? {} : { modelDir: state.active.modelDir }),
        state: 'ready',
        since: new Date().toISOString()
      }
      await c.query("DELETE FROM index_settings WHERE slot IN ('active', 'standby')")
      await c.query(
        'INSERT INTO index_settings (slot, model_id, dim, vector_type, m, ef_construction, model_dir) VALUES (\'active\', $1, $2, $3, $4, $5, $6)',
        [standby.modelId, standby.dim, standby.vectorType, standby.M, standby.efConstruction, standby.record.modelDir ?? null])
      await writeStandbyRow(c, state.active, previous)
      await c.query('DELETE FROM model_switch_claims')
      await c.query("UPDATE meta SET value = $1 WHERE key = 'model_id'", [standby.modelId])
      await c.query("UPDATE meta SET value = $1 WHERE key = 'dim'", [String(standby.dim)])
      await c.query(`NOTIFY ${MODELS_CHANNEL}`)
      return { moved: false as const, state: await readModelState(c), previous }
    })
    // same tick as the commit's answer: searches take the new column's dimension, and the services their encoders
    this.adopt(result.state, onSwapped)
    if (result.moved) {
      const now = result.state.standby?.record
      if (now === undefined || result.state.active.modelId !== expected.modelId) throw new ConflictError(`the slots changed meanwhile: ${result.state.active.modelId} is active`)
      return now
    }
    return result.previous
  }

  async dropStandby (): Promise<void> {
    const next = await withTransaction(this.pool, async (c) => {
      await readModelState(c, 'update')
      await c.query("DELETE FROM index_settings WHERE slot = 'standby'")
      // catalog work only: the space of the dropped vectors comes back as rows are rewritten (VACUUM FULL or pg_repack return it at once)
      for (const t of VECTOR_TABLES) await c.query(`ALTER TABLE ${t} DROP COLUMN IF EXISTS ${STANDBY_COLUMN}`)
      await c.query('DELETE FROM model_switch_claims')
      await c.query(`NOTIFY ${MODELS_CHANNEL}`)
      return await readModelState(c)
    })
    this.cursor = { images: undefined, texts: undefined }
    this.adopt(next)
  }

  /** The switch's claim: an advisory lock held by a connection of its own (it ends with the process). */
  async lead (): Promise<(() => Promise<void>) | undefined> {
    const client = new pg.Client(connectionConfig(this.opts.databaseUrl, 'align-search model switch', 'maintenance', this.opts.timeouts))
    client.on('error', () => {}) // a lost connection ends the claim; the holder's next write fails and says so
    await client.connect()
    const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [SWITCH_LOCK])
    if (rows[0]?.ok !== true) {
      await client.end().catch(() => {})
      return undefined
    }
    return async () => { await client.end().catch(() => {}) }
  }

  async close (): Promise<void> {
    this.closed = true
    clearInterval(this.timer)
    // rows claimed and not stored go back at once rather than when the claim lapses
    if (this.held.size > 0) await this.unclaim().catch(() => {})
    this.stopRenewal()
    await this.listener?.end().catch(() => {})
    this.listener = undefined
  }

  /** the standby column's indexes, built beside the active ones (as db:reindex builds), where missing or left invalid */
  private async buildStandbyIndexes (rec: IndexRecord): Promise<void> {
    const client = new pg.Client(connectionConfig(this.opts.databaseUrl, 'align-search model switch', 'maintenance', this.opts.timeouts))
    client.on('error', () => {}) // a lost connection also fails the statement in flight
    await client.connect()
    try {
      for (const t of VECTOR_TABLES) {
        const name = standbyIndexName(t, rec.vectorType)
        if (await storedIndexParams(client, name) !== undefined) continue
        await client.query(`DROP INDEX CONCURRENTLY IF EXISTS ${name}`) // a crashed build's INVALID leftover
        const expr = rec.vectorType === 'vector' ? STANDBY_COLUMN : `(${STANDBY_COLUMN}::halfvec(${rec.dim}))`
        const ops = rec.vectorType === 'vector' ? 'vector_cosine_ops' : 'halfvec_cosine_ops'
        this.opts.logger?.info({ table: t, index: name, model: rec.modelId }, 'building the standby model\'s HNSW index beside the active one (CONCURRENTLY: writes go on)')
        await client.query(`CREATE INDEX CONCURRENTLY ${name} ON ${t} USING hnsw (${expr} ${ops}) WITH (m = ${rec.M}, ef_construction = ${rec.efConstruction})`)
      }
    } finally {
      await client.end().catch(() => {})
    }
  }

  /**
   * One claim, from `after` on in id order: rows without a standby vector and without another
   * process's live claim (a lapsed claim is taken over; `lapsed` names its holder).
   */
  private async claim (table: CollectionName, after: string, limit: number): Promise<Array<{ id: string, lapsed: string | null }>> {
    return await withTransaction(this.pool, async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [CLAIM_LOCK])
      const r = await c.query<{ id: string, lapsed: string | null }>(
        `WITH candidates AS (
           SELECT t.id, m.holder AS lapsed FROM ${table} t LEFT JOIN model_switch_claims m ON m.tbl = $1 AND m.id = t.id
            WHERE t.id > $2 AND t.${STANDBY_COLUMN} IS NULL AND (m.id IS NULL OR m.expires_at <= clock_timestamp())
            ORDER BY t.id LIMIT $3
         ), claimed AS (
           INSERT INTO model_switch_claims (tbl, id, holder, expires_at)
           SELECT $1, id, $4, clock_timestamp() + $5::int * interval '1 millisecond' FROM candidates
           ON CONFLICT (tbl, id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
           RETURNING id
         )
         SELECT candidates.id, candidates.lapsed FROM candidates JOIN claimed USING (id) ORDER BY candidates.id`,
        [table, after, limit, this.holder, this.leaseMs])
      return r.rows
    })
  }

  /** keeps this process's claims live while it embeds them */
  private async renew (): Promise<void> {
    if (this.held.size === 0) return
    await this.pool.query('UPDATE model_switch_claims SET expires_at = clock_timestamp() + $2::int * interval \'1 millisecond\' WHERE holder = $1', [this.holder, this.leaseMs])
  }

  private stopRenewal (): void {
    this.held.clear()
    clearInterval(this.renewal)
    this.renewal = undefined
  }

  /** LISTEN on a connection of its own; without it (PGlite, a lost connection) the periodic re-read still follows */
  private async listen (): Promise<void> {
    const client = new pg.Client(connectionConfig(this.opts.databaseUrl, 'align-search models', 'maintenance', this.opts.timeouts))
    client.on('error', () => {
      if (this.listener === client) this.listener = undefined
      void client.end().catch(() => {})
      if (!this.closed) setTimeout(() => { if (!this.closed && this.listener === undefined) void this.listen().catch(() => {}) }, 1000).unref()
    })
    client.on('notification', () => { void this.refresh().catch(() => {}) })
    try {
      await client.connect()
      await client.query(`LISTEN ${MODELS_CHANNEL}`)
      this.listener = client
      if (this.closed) await this.close()
    } catch (err) {
      await client.end().catch(() => {})
      this.opts.logger?.warn({ err: (err as Error).message }, `cannot LISTEN for model swaps: following them every ${this.opts.refreshMs ?? RECORD_REFRESH_MS} ms instead`)
    }
  }

  private adopt (next: ModelState, onSwapped?: () => void): void {
    this.state = next
    this.applySettings()
    onSwapped?.()
    for (const fn of this.listeners) fn()
  }

  private applySettings (): void {
    for (const t of VECTOR_TABLES) {
      this.opts.settings[t].modelId = this.state.active.modelId
      this.opts.settings[t].dim = this.state.active.dim
      this.opts.settings[t].vectorType = this.state.active.vectorType
    }
  }
}
