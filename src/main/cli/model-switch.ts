/**
 * `npm run model:switch -- <dir> [--low-resolution skip|proceed] [--no-wait]`: asks the running
 * server (SERVER_URL, default http://127.0.0.1:$PORT) to switch to the model folder <dir> (relative
 * to its MODELS_DIR) and follows the switch until the swap. The server does the work, so search
 * never stops; this command only starts and watches it. API_KEY is sent when set.
 */
const USAGE = 'usage: npm run model:switch -- <dir under MODELS_DIR> [--low-resolution skip|proceed] [--no-wait]   (env SERVER_URL, API_KEY)'

interface Status {
  active: { modelId: string }
  standby: null | { modelId: string, state: string, progress?: { images: { done: number, total: number }, texts: { done: number, total: number } } }
  running: boolean
}

async function call (method: string, path: string, body?: unknown): Promise<Status> {
  const base = process.env.SERVER_URL ?? `http://127.0.0.1:${process.env.PORT ?? '8080'}`
  const headers: Record<string, string> = {}
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (process.env.API_KEY !== undefined) headers.authorization = `Bearer ${process.env.API_KEY}`
  const res = await fetch(new URL(path, base), { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
  const json = await res.json() as Status & { message?: string }
  if (!res.ok) throw new Error(`${res.status}: ${json.message ?? res.statusText}`)
  return json
}

async function main (): Promise<number> {
  const args = process.argv.slice(2)
  const dir = args.find((a) => !a.startsWith('--'))
  const lowAt = args.indexOf('--low-resolution')
  const lowResolution = lowAt >= 0 ? args[lowAt + 1] : undefined
  if (dir === undefined || (lowAt >= 0 && lowResolution !== 'skip' && lowResolution !== 'proceed')) {
    console.error(USAGE)
    return 2
  }
  let status = await call('POST', '/v1/models/switch', { modelDir: dir, ...(lowResolution === undefined ? {} : { lowResolution }) })
  const target = status.standby?.modelId ?? status.active.modelId
  console.log(`switching from ${status.active.modelId} to ${target}; search goes on meanwhile`)
  if (args.includes('--no-wait')) return 0
  for (;;) {
    if (status.active.modelId === target) {
      console.log(`done: ${target} is active; the previous model is on standby until DELETE /v1/models/standby`)
      return 0
    }
    if (!status.running && status.standby?.state !== 'building') {
      console.error(`the switch stopped: active ${status.active.modelId}, standby ${status.standby?.modelId ?? 'none'}`)
      return 1
    }
    const p = status.standby?.progress
    if (p !== undefined) console.log(`images ${p.images.done}/${p.images.total}, texts ${p.texts.done}/${p.texts.total}`)
    await new Promise((resolve) => setTimeout(resolve, 2000))
    status = await call('GET', '/v1/models')
  }
}

main().then((code) => { process.exitCode = code }, (err: unknown) => {
  console.error(`model:switch: ${(err as Error).message}`)
  process.exitCode = 1
})
