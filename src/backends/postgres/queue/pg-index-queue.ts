/**
 * The shared index queue (the port in src/jobs/cluster/index-queue.ts) on pg-boss, in the same
 * PostgreSQL as the data, so a cluster runs one database. Three queues:
 *   - plan:   one message per index job; a worker lists a directory job's files and splits the job
 *             into batch messages;
 *   - batch:  one message per range of a job's items; any worker claims one, encodes it and commits;
 *   - failed: pg-boss's dead letter for plan or batch messages that failed every retry; a worker
 *             marks their job failed.
 *
 * Message ids are derived from the job id (and the batch number), so sending the same plan or
 * batch twice (a re-plan after a crash, the sweep of unfinished jobs) inserts nothing.
 */
import { createHash } from 'node:crypto'
import pg from 'pg'
import PgBoss from 'pg-boss'
import type { Logger } from '../../../core/types.js'
import { QUEUES, type BatchMessage, type IndexQueue, type PlanMessage, type QueueMessage, type QueueName } from '../../index-queue.js'
import { toBackendError } from '../pg-errors.js'
import { connectionConfig } from '../pg-pool.js'
import type { ConnectionTimeouts } from '../postgres-options.js'
import { queueTiming, type QueueTiming } from './queue-timing.js'

/** pg-boss's tables live in their own schema, apart from the data and from any other pg-boss an app may run */
export const QUEUE_SCHEMA = 'align_queue'

/** retries of a plan or batch before its job is failed (a worker that dies holding it counts); INDEX_RETRY_LIMIT */
export const DEFAULT_RETRY_LIMIT = 8
/**
 * seconds before the first retry; each further one waits about twice as long (pg-boss
 * retryBackoff: delay·2^(n-1) to twice that, jittered), so 8 retries from 2 s span about 4 to 8
 * minutes: long enough to ride out a connection storm or a decoder's restart. INDEX_RETRY_DELAY
 */
export const DEFAULT_RETRY_DELAY_S = 2
/**
 * how long a message may wait in the queue before pg-boss drops it (its keep_until; pg-boss's own
 * default is 14 days, which a large backlog can outlast). The sweep re-sends a running job's lost
 * batches anyway; this keeps it from having to. INDEX_QUEUE_RETENTION
 */
export const DEFAULT_RETENTION_MINUTES = 90 * 24 * 60
/** batch messages per INSERT */
const INSERT_CHUNK = 1000
/** the channel on which senders tell idle workers that there is work (pg-boss 10 only polls) */
const NOTIFY_CHANNEL = 'align_index_queue'

export interface IndexQueueOptions {
  databaseUrl: string
  /** INDEX_RETRY_AFTER, ms: sets expiry, heartbeat, maintenance and polling (queue-timing.ts) */
  retryAfterMs: number
  /** retries before a message goes to the dead letter (default DEFAULT_RETRY_LIMIT) */
  retryLimit?: number
  /** seconds before the first retry, doubling after (default DEFAULT_RETRY_DELAY_S) */
  retryDelaySeconds?: number
  /** minutes a queued message is kept before pg-boss drops it (default DEFAULT_RETENTION_MINUTES) */
  retentionMinutes?: number
  /** connections of the queue's own pool (default 3: polling, heartbeat, maintenance) */
  poolSize?: number
  /** every connection's timeouts, pg-boss's pool's too (default DEFAULT_TIMEOUTS) */
  timeouts?: ConnectionTimeouts | undefined
  logger: Logger
}

/**
 * A message id that depends only on the job, its run (`attempt`, one more per resume), the kind of
 * message and its number (UUID syntax; batches of a job sort by number).
 */
export function messageId (jobId: string, kind: 'plan' | 'batch', n = 0, attempt = 0): string {
  const h = createHash('sha256').update(attempt === 0 ? `${kind}\0${jobId}` : `${kind}\0${jobId}\0${attempt}`).digest('hex')
  const num = n.toString(16).padStart(20, '0')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${num.slice(0, 4)}-${num.slice(4, 8)}-${num.slice(8)}`
}

/** The index queue (src/jobs/cluster/index-queue.ts) on pg-boss. */
export class PgIndexQueue implements IndexQueue {
  private listener: pg.Client | undefined
  private listening: Promise<void> | undefined
  private closed = false

  private readonly retry: RetryPolicy

  private constructor (private readonly boss: PgBoss, readonly timing: QueueTiming, private readonly opts: IndexQueueOptions) {
    this.retry = retryPolicy(opts)
  }

  /** Connects, installs or upgrades pg-boss's schema (under its own lock) and creates the queues. */
  static async open (opts: IndexQueueOptions): Promise<PgIndexQueue> {
    const timing = queueTiming(opts.retryAfterMs)
    const boss = new PgBoss({
      // pg-boss hands its options to pg.Pool: the same timeouts as every other connection
      ...connectionConfig(opts.databaseUrl, 'align-search queue', 'queue', opts.timeouts) as PgBoss.ConstructorOptions,
      schema: QUEUE_SCHEMA,
      max: opts.poolSize ?? 3,
      supervise: true,
      maintenanceIntervalSeconds: timing.maintenanceIntervalSeconds,
      schedule: false
    })
    let lastError = ''
    // an unhandled 'error' event would end the process; the same failure repeats every interval, so log it when it changes
    boss.on('error', (err) => {
      if (err.message === lastError) return
      lastError = err.message
      opts.logger.warn({ err: err.message }, 'index queue: maintenance failed; it retries')
    })
    try {
      await boss.start()
      const retry = retryPolicy(opts)
      await oneAtATime(opts, async () => {
        // createQueue leaves an existing queue as it is; updateQueue then applies today's settings
        const failed = { name: QUEUES.failed, retryLimit: retry.retryLimit, retentionMinutes: retry.retentionMinutes }
        await boss.createQueue(QUEUES.failed, failed)
        await boss.updateQueue(QUEUES.failed, failed)
        for (const name of [QUEUES.plan, QUEUES.batch]) {
          const options = { name, ...retry, deadLetter: QUEUES.failed }
          await boss.createQueue(name, options)
          await boss.updateQueue(name, options)
        }
      })
    } catch (err) {
      await boss.stop({ graceful: false }).catch(() => {})
      throw toBackendError(err)
    }
    return new PgIndexQueue(boss, timing, opts)
  }

  /** Queues the planning of run `attempt` of job `jobId` (once: a second send while the first is kept inserts nothing). */
  async sendPlan (jobId: string, attempt = 0): Promise<void> {
    const data: PlanMessage = attempt === 0 ? { jobId } : { jobId, attempt }
    if (await this.boss.send(QUEUES.plan, data, this.sendOptions(messageId(jobId, 'plan', 0, attempt))) !== null) await this.notify()
  }

  /** Queues a job's batches (each once, by its number). */
  async sendBatches (batches: BatchMessage[]): Promise<void> {
    for (let start = 0; start < batches.length; start += INSERT_CHUNK) {
      await this.boss.insert(batches.slice(start, start + INSERT_CHUNK).map((b) => ({
        id: messageId(b.jobId, 'batch', b.n, b.attempt ?? 0),
        name: QUEUES.batch,
        data: b,
        expireInSeconds: this.timing.expireInSeconds,
        ...this.retry,
        deadLetter: QUEUES.failed
      })))
    }
    if (batches.length > 0) await this.notify()
  }

  /**
   * Calls `onWork` whenever a sender says there is new work (LISTEN on its own connection), so an
   * idle worker starts at once instead of at its next poll. Polling stays the safety net: when the
   * connection is lost, call this again (the worker does at every idle poll) to listen again.
   */
  async listen (onWork: () => void): Promise<void> {
    if (this.closed || this.listener !== undefined) return
    this.listening ??= (async () => {
      const client = new pg.Client(connectionConfig(this.opts.databaseUrl, 'align-search queue listener', 'queue', this.opts.timeouts))
      const drop = (): void => {
        if (this.listener === client) this.listener = undefined
        client.end().catch(() => {})
      }
      client.on('error', drop) // an unhandled 'error' event would end the process
      client.on('end', drop)
      client.on('notification', () => { onWork() })
      try {
        await client.connect()
        await client.query(`LISTEN ${NOTIFY_CHANNEL}`)
        if (this.closed) { drop(); return }
        this.listener = client
      } catch {
        drop() // polling goes on; the next idle poll tries again
      }
    })().finally(() => { this.listening = undefined })
    await this.listening
  }

  /** Wakes the listening workers (best effort: they poll anyway). */
  private async notify (): Promise<void> {
    await this.boss.getDb().executeSql(`SELECT pg_notify('${NOTIFY_CHANNEL}', '')`, []).catch(() => {})
  }

  /** Claims the next message of `queue` (oldest first), or resolves undefined when there is none. */
  async fetch<T> (queue: QueueName): Promise<QueueMessage<T> | undefined> {
    const [job] = await this.boss.fetch<T>(queue, { batchSize: 1, includeMetadata: true, priority: false })
    if (job === undefined) return undefined
    const error = messageOf(job.output)
    return { id: job.id, data: job.data, retryCount: job.retryCount, ...(error === undefined ? {} : { error }) }
  }

  async complete (queue: QueueName, id: string): Promise<void> {
    await this.boss.complete(queue, id)
  }

  /** Gives a message back: it is tried again after its backoff, or goes to the dead letter queue once its retries are spent. */
  async fail (queue: QueueName, id: string, err: unknown): Promise<void> {
    await this.boss.fail(queue, id, { message: err instanceof Error ? err.message : String(err) })
  }

  /**
   * Tells the queue that the messages `ids` of `queue` are still being worked on. pg-boss 10 has no
   * heartbeat of its own: its maintenance fails an active message once `started_on + expire_in` has
   * passed, so refreshing `started_on` keeps a live worker's batch, however long it takes, while
   * a dead worker's batch expires within the expiry.
   */
  async heartbeat (queue: QueueName, ids: string[]): Promise<void> {
    if (ids.length === 0) return
    await this.boss.getDb().executeSql(
      `UPDATE ${QUEUE_SCHEMA}.job SET started_on = now() WHERE name = $1 AND id = ANY($2::uuid[]) AND state = 'active'`, [queue, ids])
  }

  /** messages of `queue` not yet completed, cancelled or failed (queued, waiting for a retry, or active) */
  async unfinished (queue: QueueName): Promise<number> {
    const r = await this.boss.getDb().executeSql(
      `SELECT count(*)::int AS n FROM ${QUEUE_SCHEMA}.job WHERE name = $1 AND state < 'completed'`, [queue])
    return (r.rows[0] as { n: number } | undefined)?.n ?? 0
  }

  async close (): Promise<void> {
    this.closed = true
    await this.listening
    await this.listener?.end().catch(() => {})
    this.listener = undefined
    // no pg-boss worker runs here (workers fetch themselves), so nothing is left to wait for
    await this.boss.stop({ graceful: false, wait: true, close: true })
  }

  private sendOptions (id: string): PgBoss.SendOptions {
    const { retryLimit, retryDelay, retryBackoff } = this.retry
    return { id, expireInSeconds: this.timing.expireInSeconds, retryLimit, retryDelay, retryBackoff, deadLetter: QUEUES.failed }
  }
}

interface RetryPolicy { retryLimit: number, retryDelay: number, retryBackoff: true, retentionMinutes: number }

/** the retry and retention settings of plan and batch messages */
function retryPolicy (opts: IndexQueueOptions): RetryPolicy {
  return {
    retryLimit: opts.retryLimit ?? DEFAULT_RETRY_LIMIT,
    retryDelay: Math.max(1, Math.round(opts.retryDelaySeconds ?? DEFAULT_RETRY_DELAY_S)),
    retryBackoff: true,
    retentionMinutes: Math.max(1, Math.round(opts.retentionMinutes ?? DEFAULT_RETENTION_MINUTES))
  }
}

/** the message of a failed message's output: ours ({message}), or pg-boss's expiry ({value: {message}}) */
function messageOf (output: unknown): string | undefined {
  const o = output as { message?: unknown, value?: { message?: unknown } } | null | undefined
  const m = o?.message ?? o?.value?.message
  return typeof m === 'string' ? m : undefined
}

/** advisory lock key of queue creation (distinct from node-pg-migrate's) */
const CREATE_QUEUES_LOCK = '7423991052018744001'

/**
 * Runs `fn` while this process holds a session advisory lock on its own connection. pg-boss's
 * createQueue deadlocks (40P01) when processes that start together create the same queues at
 * once (seen in the cluster test: two workers started side by side), so they take turns.
 */
async function oneAtATime (opts: IndexQueueOptions, fn: () => Promise<void>): Promise<void> {
  // a maintenance connection (no statement timeout): it waits on the lock while another process creates the queues
  const client = new pg.Client(connectionConfig(opts.databaseUrl, 'align-search queue setup', 'maintenance', opts.timeouts))
  client.on('error', () => {}) // a lost connection also fails the query in flight, which reports it
  await client.connect()
  try {
    await client.query('SELECT pg_advisory_lock($1)', [CREATE_QUEUES_LOCK])
    try {
      await fn()
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [CREATE_QUEUES_LOCK]).catch(() => {})
    }
  } finally {
    await client.end().catch(() => {})
  }
}
