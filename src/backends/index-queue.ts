/**
 * The port between cluster jobs (src/jobs/cluster) and their shared queue: what the index worker and ClusterJobs
 * need from it. src/backends/postgres/queue implements it with pg-boss in the data's database;
 * jobs/cluster never sees that library. A port beside ports.ts, since only cluster mode has a queue.
 *
 * Three queues:
 *   - plan:   one message per index job; a worker lists a directory job's files and splits the job
 *             into batch messages;
 *   - batch:  one message per range of a job's items; any worker claims one, encodes it and commits;
 *   - failed: the dead letter for plan or batch messages that failed every retry; a worker
 *             marks their job failed.
 */

export const QUEUES = {
  plan: 'align-index-plan',
  batch: 'align-index-batch',
  failed: 'align-index-failed'
} as const
export type QueueName = typeof QUEUES[keyof typeof QUEUES]

/** `attempt`: the job's run (absent = 0); a resumed job's messages are new messages */
export interface PlanMessage { jobId: string, attempt?: number }
/** items `first`..`last` (job item seqs, inclusive) of run `attempt` of job `jobId`; `n` numbers the batch within the job */
export interface BatchMessage { jobId: string, n: number, first: number, last: number, attempt?: number }
/** what the dead letter queue receives: the data of the message that failed */
export type FailedMessage = PlanMessage | BatchMessage

export interface QueueMessage<T> {
  id: string
  data: T
  /** tries before this one */
  retryCount: number
  /** dead letters: why the message they stand for failed last */
  error?: string
}

export interface IndexQueue {
  /** how often a holder of a message must beat, and how often an idle worker polls, ms */
  readonly timing: { readonly heartbeatMs: number, readonly pollMs: number }
  /** Queues the planning of run `attempt` (default 0) of a job; sending the same plan twice queues it once. */
  sendPlan: (jobId: string, attempt?: number) => Promise<void>
  /** Queues batches; a batch already sent (same job and number) is not queued again. */
  sendBatches: (batches: BatchMessage[]) => Promise<void>
  /** Calls `onWork` whenever a sender says there is work (polling stays the safety net). */
  listen: (onWork: () => void) => Promise<void>
  /** Claims the next message of `queue`, if any. */
  fetch: <T>(queue: QueueName) => Promise<QueueMessage<T> | undefined>
  complete: (queue: QueueName, id: string) => Promise<void>
  /** Gives a message back for a retry (or to the dead letter once its tries are spent). */
  fail: (queue: QueueName, id: string, err: unknown) => Promise<void>
  /** Keeps claimed messages from expiring while their holder works on them. */
  heartbeat: (queue: QueueName, ids: string[]) => Promise<void>
  /** messages of `queue` not yet completed or failed for good */
  unfinished: (queue: QueueName) => Promise<number>
  close: () => Promise<void>
}
