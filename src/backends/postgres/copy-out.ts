/**
 * `COPY (SELECT …) TO STDOUT (FORMAT binary)` on a borrowed connection, and a reader of that
 * format: the one way node-postgres hands over result bytes untouched. Its row reader decodes
 * every field of an ordinary result as UTF-8 text first, so a binary-format bytea comes back
 * mangled (any byte ≥ 0x80), and the text format costs hex's twice the bytes; COPY's data messages
 * are kept as Buffers. node-postgres runs any object with a `submit` method as a query: this is one.
 */
import type pg from 'pg'

/** the fixed start of PostgreSQL's binary COPY format */
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1')

/** what node-postgres's Client calls on the query in progress (its `Submittable`) */
interface Connection { query: (text: string) => void, sendCopyFail: (message: string) => void }

class CopyOut {
  private readonly chunks: Buffer[] = []
  private settled = false
  /**
   * node-postgres wraps this to clear its read timer (`query_timeout`, a little past the statement
   * timeout): a server gone silent mid-COPY fails the read with "Query read timeout" through
   * handleError, and the connection is dropped (withClient), rather than hanging
   */
  callback?: (err: Error | null) => void
  readonly done: Promise<Buffer>
  private resolve!: (b: Buffer) => void
  private reject!: (err: Error) => void

  constructor (private readonly text: string) {
    this.done = new Promise<Buffer>((resolve, reject) => { this.resolve = resolve; this.reject = reject })
  }

  submit (connection: Connection): void { connection.query(this.text) }
  // a view into the protocol reader's buffer, which it reuses for the messages that follow: copy it
  handleCopyData (msg: { chunk: Buffer }): void { this.chunks.push(Buffer.from(msg.chunk)) }
  handleCopyInResponse (connection: Connection): void { connection.sendCopyFail('COPY FROM is not what this reader runs') }
  handleRowDescription (): void {}
  handleDataRow (): void {}
  handleCommandComplete (): void {}
  handleEmptyQuery (): void {}
  handlePortalSuspended (): void {}
  handleError (err: Error): void {
    if (this.settled) return
    this.settled = true
    this.callback?.(err)
    this.reject(err)
  }

  handleReadyForQuery (): void {
    if (this.settled) return
    this.settled = true
    this.callback?.(null)
    this.resolve(Buffer.concat(this.chunks))
  }
}

/**
 * Runs `COPY (<select>) TO STDOUT (FORMAT binary)` and resolves with its rows, each field a Buffer
 * (null for SQL NULL) in the raw binary form of its type: a bytea's own bytes, a text's UTF-8.
 * `select` is sent as simple-protocol text: it takes no parameters, so quote values with
 * `client.escapeLiteral`.
 */
export async function copyOutRows (client: pg.ClientBase, select: string): Promise<Array<Array<Buffer | null>>> {
  const copy = new CopyOut(`COPY (${select}) TO STDOUT (FORMAT binary)`)
  client.query(copy as unknown as pg.QueryConfig)
  return parseBinaryCopy(await copy.done)
}

/** Reads PostgreSQL's binary COPY format (header, then per row a field count and length-prefixed fields, then -1). */
export function parseBinaryCopy (data: Buffer): Array<Array<Buffer | null>> {
  if (data.length < SIGNATURE.length + 8 || !data.subarray(0, SIGNATURE.length).equals(SIGNATURE)) throw new Error('not PostgreSQL binary COPY data')
  let at = SIGNATURE.length + 4 // flags
  at += 4 + data.readUInt32BE(at) // header extension
  const rows: Array<Array<Buffer | null>> = []
  for (;;) {
    const fields = data.readInt16BE(at)
    at += 2
    if (fields === -1) return rows
    const row: Array<Buffer | null> = []
    for (let i = 0; i < fields; i++) {
      const len = data.readInt32BE(at)
      at += 4
      if (len === -1) { row.push(null); continue }
      row.push(data.subarray(at, at + len))
      at += len
    }
    rows.push(row)
  }
}
