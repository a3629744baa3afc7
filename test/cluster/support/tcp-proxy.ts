/**
 * A TCP proxy that can stop forwarding without closing anything: what a machine that vanished
 * looks like to the database (a SIGSTOPped process is not that: its kernel still answers, so the
 * server sees the connection alive and our keepalives succeed). Once frozen, every byte either way
 * is dropped and every socket stays open; new connections are accepted and then ignored.
 */
import { createServer, connect, type Socket } from 'node:net'

export interface FreezableProxy {
  /** `databaseUrl` with its host and port replaced by the proxy's */
  urlFor: (databaseUrl: string) => string
  /** resolves once the proxy froze: at the first client chunk holding `trigger` (forwarded, then nothing more) */
  freezeOn: (trigger: string) => Promise<void>
  frozen: () => boolean
  close: () => Promise<void>
}

export async function startFreezableProxy (targetHost: string, targetPort: number): Promise<FreezableProxy> {
  let frozen = false
  let trigger: { text: Buffer, resolve: () => void } | undefined
  const sockets = new Set<Socket>()
  const freeze = (): void => {
    frozen = true
    trigger?.resolve()
    trigger = undefined
  }
  const server = createServer((client) => {
    sockets.add(client)
    client.on('error', () => {})
    if (frozen) return // accepted, never answered
    const upstream = connect(targetPort, targetHost)
    sockets.add(upstream)
    upstream.on('error', () => {})
    client.on('data', (chunk: Buffer) => {
      if (frozen) return
      upstream.write(chunk)
      if (trigger !== undefined && chunk.includes(trigger.text)) freeze()
    })
    upstream.on('data', (chunk: Buffer) => { if (!frozen) client.write(chunk) })
    // while forwarding, a close on one side closes the other; once frozen, nothing is closed
    client.on('close', () => { if (!frozen) upstream.destroy() })
    upstream.on('close', () => { if (!frozen) client.destroy() })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    urlFor: (databaseUrl) => {
      const u = new URL(databaseUrl)
      u.hostname = '127.0.0.1'
      u.port = String(port)
      return u.toString()
    },
    freezeOn: async (text) => await new Promise<void>((resolve) => { trigger = { text: Buffer.from(text), resolve } }),
    frozen: () => frozen,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
    }
  }
}
