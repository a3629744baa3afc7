/**
 * A SIGKILL that lands the moment an upload is acknowledged, for the durability suites (embedded
 * and PostgreSQL): what the server answered `indexed` must be there after a restart. A server that
 * answers before its commit loses the answered upload in about half of such rounds.
 */
import assert from 'node:assert/strict'
import type { RunningServer } from '../../helpers/spawn-server.js'
import type { Api, ItemResult } from './api.js'

/** acknowledgements in a round before the kill: the server is past its start and busy with uploads */
export const ACKS_BEFORE_KILL = 8
/** uploads in flight at once, so that the server is always committing, encoding or answering one */
export const UPLOADERS = 4
/** images a round needs: the acknowledged ones and those in flight when the kill lands, with room */
export const KILL_IMAGES_PER_ROUND = ACKS_BEFORE_KILL + 4 * UPLOADERS

/**
 * Small single-image uploads (ids `${prefix}-${i}`) from UPLOADERS clients; when the
 * ACKS_BEFORE_KILL-th is answered `indexed`, SIGKILL in the same tick, before the client does
 * anything else. Resolves, once the server has exited, with every id it answered `indexed`,
 * including answers already on their way when the signal was sent.
 */
export async function uploadUntilKilled (server: RunningServer, api: Api, prefix: string, images: Buffer[]): Promise<string[]> {
  const acked: string[] = []
  let killed = false
  let next = 0
  const uploader = async (): Promise<void> => {
    while (!killed && next < images.length) {
      const i = next++
      const id = `${prefix}-${i}`
      let res
      try {
        res = await api.upload([{ id, bytes: images[i]! }])
      } catch (err) {
        if (killed) return // the connection died with the server: this one was never acknowledged
        throw err
      }
      const item = res.status === 200 ? (res.json.items as ItemResult[])[0] : undefined
      assert.ok(killed || item?.status === 'indexed', `upload ${id} before the kill: ${res.status} ${res.text.slice(0, 300)}`)
      if (item?.status !== 'indexed') continue
      acked.push(id)
      if (!killed && acked.length >= ACKS_BEFORE_KILL) {
        server.child.kill('SIGKILL')
        killed = true
      }
    }
  }
  await Promise.all(Array.from({ length: UPLOADERS }, uploader))
  assert.ok(killed, `only ${acked.length} uploads were acknowledged; the round needs ${ACKS_BEFORE_KILL}`)
  await server.kill() // waits for the exit
  return acked
}
