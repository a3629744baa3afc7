/**
 * Model switches without downtime (README "Changing the model"). A switch loads the new model
 * beside the serving one, embeds every stored image and text into the backend's standby slot (its
 * own vectors and index, any dimension) while searches keep being answered by the active model,
 * then swaps the slots in one atomic step. The previous model stays on standby until deleted, so
 * swapping back is one more atomic step. Writes during a switch embed with both models.
 *
 * State lives in the backend (the standby record and its vectors), so a restarted server resumes a
 * switch where it stopped: `resume()` at start.
 *
 * Where processes share the slots (PostgreSQL), one of them leads a switch (ModelSlots.lead): it
 * embeds and, once nothing is missing, swaps. Every other process that does index work and holds
 * the new model (API replicas with INDEX_WORKER on, index workers through `watch()`) embeds batches
 * beside it; the backend hands each batch to one process only (ModelSlots.missing claims it).
 */
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { CollectionName, ModelSlots, ReembedText, StandbyRecord } from '../backends/ports.js'
import { BadRequestError, ConflictError, NotFoundError, NotImplementedError } from '../core/errors.js'
import { formatPrompt } from '../ml/index.js'
import type { Encoder } from '../ml/types.js'
import type { Core } from './core.js'
import { realRoots, reembedBytes } from './reembed-source.js'

/** How images without a readable source or a large-enough preview are treated (asked before a switch starts). */
export type LowResolutionChoice = 'skip' | 'proceed'

export interface ModelSwitchOptions {
  /** MODELS_DIR: every model folder a switch may name lies under it */
  modelsDir: string
  /** loads a model folder (the same way the server loads MODEL_DIR) */
  loadEncoder: (modelDir: string) => Promise<Encoder>
  /** images re-embedded per batch (default 32) */
  batchSize?: number
  /** shared slots: how often a switch no process runs is looked for, and taken over (or helped), ms (default 5000) */
  takeoverMs?: number
  /**
   * shared slots: whether this process embeds a switch's batches beside the process that leads it
   * (it does index work: `npm start` with INDEX_WORKER on, `npm run worker`); the leader embeds anyway
   */
  helps?: boolean
  /** shared slots: how often the leader, with nothing left to claim, looks whether the batches other processes hold are stored, ms (default 500) */
  claimPollMs?: number
}

export interface SwitchProgress { images: { done: number, total: number }, texts: { done: number, total: number } }

export interface ModelsStatus {
  active: { modelId: string, dim: number, modelDir?: string }
  standby: (StandbyRecord & { progress?: SwitchProgress }) | null
  /** true while a switch is embedding in this process */
  running: boolean
}

/** The model-switch calls of the Services (absent where the backend has no model slots). */
export interface ModelService {
  status (): Promise<ModelsStatus>
  /**
   * Starts a switch to the model folder `modelDir` (relative to MODELS_DIR). Refuses (409) while
   * images lack a good enough source unless `lowResolution` says what to do with them.
   */
  start (modelDir: string, opts?: { lowResolution?: LowResolutionChoice }): Promise<ModelsStatus>
  /** Swaps to the standby model when it is complete (a swap back after a switch): one atomic step. */
  swap (): Promise<ModelsStatus>
  /** Cancels a running switch, or deletes the previous model's vectors; resolves false when there was no standby. */
  dropStandby (): Promise<boolean>
  /** Resolves when the running switch has stopped (swapped, failed or cancelled). */
  idle (): Promise<void>
  close (): Promise<void>
}

const TEXT_BATCH = 256
const ZERO = (dim: number): Float32Array => new Float32Array(dim)

/** how a fill began: a switch started or resumed here, a takeover of one no process ran, or batches embedded for the process that leads it */
type FillMode = 'lead' | 'takeover' | 'help'

export class ModelSwitcher implements ModelService {
  private running: Promise<void> | undefined
  private controller: AbortController | undefined
  private roots: string[] | undefined
  /** the loading of what another process's change to the slots needs, one at a time */
  private following: Promise<void> | undefined
  /** own changes to the slots under way (their notices are not another process's) */
  private changing = 0
  private watchdog: NodeJS.Timeout | undefined
  private closed = false
  /** whether this process may lead a switch (a server; an index worker only helps) */
  private mayLead = false
  /** the model this process is embedding for, while it fills */
  private filling: string | undefined
  private get takeoverMs (): number { return this.opts.takeoverMs ?? 5000 }

  constructor (private readonly core: Core, private readonly slots: ModelSlots, private readonly opts: ModelSwitchOptions & { sourceRoots: string[] }) {}

  /**
   * At start: loads the standby model when there is one, and resumes a switch that was under way.
   * Where other processes share the slots (PostgreSQL), it also follows what they do from now on.
   */
  async resume (): Promise<void> {
    this.mayLead = true
    if (this.slots.onChange !== undefined) {
      this.slots.onChange(() => { this.follow() })
      this.watchdog = setInterval(() => { this.takeOver() }, this.takeoverMs)
      this.watchdog.unref()
    }
    const rec = this.slots.standby()
    if (rec === undefined) return
    if (rec.modelDir === undefined) {
      this.core.logger.warn({ standby: rec.modelId }, 'the standby model has no recorded folder: writes reach only the active model until it is deleted')
      return
    }
    try {
      this.core.standbyEncoder = await this.load(rec.modelDir, rec)
    } catch (err) {
      this.core.logger.error({ err, standby: rec.modelId, modelDir: rec.modelDir }, 'could not load the standby model; the switch waits (DELETE /v1/models/standby drops it)')
      return
    }
    if (rec.state === 'building') {
      this.core.logger.info({ to: rec.modelId }, 'resuming the model switch')
      this.runInBackground()
    }
  }

  /**
   * For a process that only indexes (an index worker): follows the shared slots, with the models the
   * record names loaded from MODELS_DIR (both, during a switch, so its writes reach both models'
   * stores; the new one after a swap), and embeds a switch's batches (with `helps`), but never leads
   * or swaps.
   */
  async watch (): Promise<void> {
    if (this.slots.onChange !== undefined) {
      this.slots.onChange(() => { this.follow() })
      this.watchdog = setInterval(() => { this.takeOver() }, this.takeoverMs)
      this.watchdog.unref()
    }
    await this.loadRecorded().catch((err: unknown) => {
      this.core.logger.error({ err }, 'could not load the models the database\'s record names; writes reach only the loaded model')
    })
    this.takeOver()
  }

  async status (): Promise<ModelsStatus> {
    // both slots as they are now, before the progress count awaits the database: a swap during it
    // paired the new active model with the old "building" record of that same model
    const active = this.slots.active()
    const rec = this.slots.standby()
    let standby: ModelsStatus['standby'] = null
    if (rec !== undefined) {
      standby = { ...rec }
      if (rec.state === 'building') standby.progress = await this.progress()
    }
    return { active, standby, running: this.running !== undefined }
  }

  async start (modelDir: string, opts: { lowResolution?: LowResolutionChoice } = {}): Promise<ModelsStatus> {
    if (this.running !== undefined) throw new ConflictError('a model switch is already running; GET /v1/models shows its progress, DELETE /v1/models/standby cancels it')
    if (opts.lowResolution !== undefined && opts.lowResolution !== 'skip' && opts.lowResolution !== 'proceed') throw new BadRequestError('lowResolution must be "skip" or "proceed"')
    const rel = this.confine(modelDir)
    const current = this.slots.standby()
    const encoder = current?.modelDir === rel && this.core.standbyEncoder !== undefined ? this.core.standbyEncoder : await this.load(rel)
    const release = async (): Promise<void> => { if (encoder !== this.core.standbyEncoder) await encoder.close() }
    const { modelId, embeddingDim: dim } = encoder.config
    if (modelId === this.slots.active().modelId) {
      await release()
      throw new ConflictError(`${modelId} is the active model already`)
    }
    if (current?.state === 'ready' && current.modelId === modelId && current.skipped === undefined && (await this.missingTotal()) === 0) {
      // the previous model is complete on standby: switching to it is a swap
      return await this.swap()
    }
    const weak = await this.countWeak(encoder)
    if (weak > 0 && opts.lowResolution === undefined) {
      await release()
      throw new ConflictError(`${weak} image(s) have neither a readable source under IMPORT_DIR / DEMO_POOL nor a stored preview or original at least ${minSideOf(encoder)} px for ${modelId}. ` +
        'Send "lowResolution": "skip" to leave them out of the new model (they stay searchable only by the current one) or "proceed" to embed them from the smaller preview (upscaled)')
    }
    if (this.core.standbyEncoder !== undefined && this.core.standbyEncoder !== encoder) {
      await this.core.standbyEncoder.close()
      this.core.standbyEncoder = undefined
    }
    await this.own(async () => await this.slots.beginStandby({
      modelId,
      dim,
      modelDir: rel,
      state: 'building',
      since: new Date().toISOString(),
      ...(opts.lowResolution === undefined ? {} : { lowResolution: opts.lowResolution }),
      ...(weak > 0 && opts.lowResolution === 'skip' ? { skipped: weak } : {})
    }), () => { this.core.standbyEncoder = encoder })
    this.core.logger.info({ from: this.slots.active().modelId, to: modelId, weak, lowResolution: opts.lowResolution }, 'model switch started')
    this.runInBackground()
    return await this.status()
  }

  async swap (): Promise<ModelsStatus> {
    if (this.running !== undefined) throw new ConflictError('a model switch is running; it swaps by itself when complete')
    const rec = this.slots.standby()
    if (rec === undefined) throw new NotFoundError('there is no standby model to swap to')
    if (this.core.standbyEncoder === undefined) throw new ConflictError(`the standby model ${rec.modelId} is not loaded (its folder ${rec.modelDir ?? '?'} could not be read)`)
    const missing = await this.missingTotal()
    if (missing > 0) {
      // rows added while it was not kept up to date: fill them in first (a short switch), then swap
      await this.own(async () => { await this.slots.beginStandby({ ...rec, state: 'building', since: new Date().toISOString() }) })
      this.runInBackground()
      return await this.status()
    }
    await this.swapNow()
    return await this.status()
  }

  async dropStandby (): Promise<boolean> {
    const rec = this.slots.standby()
    if (rec === undefined) return false
    this.controller?.abort(new Error('cancelled'))
    await this.running
    let enc: Encoder | undefined
    await this.own(async () => { await this.slots.dropStandby() }, () => {
      enc = this.core.standbyEncoder
      this.core.standbyEncoder = undefined
    })
    await enc?.close()
    this.core.logger.info({ standby: rec.modelId, state: rec.state }, rec.state === 'building' ? 'model switch cancelled' : 'standby model deleted')
    return true
  }

  async idle (): Promise<void> { await this.running }

  async close (): Promise<void> {
    this.closed = true
    clearInterval(this.watchdog)
    this.controller?.abort(new Error('shutting down'))
    await this.running
    const enc = this.core.standbyEncoder
    this.core.standbyEncoder = undefined
    await enc?.close()
  }

  /** `modelDir` resolved under MODELS_DIR, as a relative path; anything outside is refused. */
  private confine (modelDir: string): string {
    if (typeof modelDir !== 'string' || modelDir.trim() === '') throw new BadRequestError('modelDir must be a folder under MODELS_DIR')
    const abs = path.resolve(this.opts.modelsDir, modelDir)
    const rel = path.relative(this.opts.modelsDir, abs)
    if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) throw new BadRequestError(`modelDir "${modelDir}" is not a folder under MODELS_DIR`)
    return rel
  }

  /** Loads a model folder under MODELS_DIR; a folder that breaks the model contract is a 400 naming the file and field. */
  private async load (rel: string, expect?: { modelId: string, dim: number }): Promise<Encoder> {
    let enc: Encoder
    try {
      enc = await this.opts.loadEncoder(path.resolve(this.opts.modelsDir, rel))
    } catch (err) {
      throw new BadRequestError(`modelDir "${rel}": ${(err as Error).message}`)
    }
    if (expect !== undefined && (enc.config.modelId !== expect.modelId || enc.config.embeddingDim !== expect.dim)) {
      await enc.close()
      throw new ConflictError(`modelDir "${rel}" now holds ${enc.config.modelId} (dim ${enc.config.embeddingDim}), not the recorded model ${expect.modelId} (dim ${expect.dim})`)
    }
    return enc
  }

  private async sourceRoots (): Promise<string[]> {
    this.roots ??= await realRoots(this.opts.sourceRoots)
    return this.roots
  }

  /** images with no readable source, no original and no preview large enough for `encoder` */
  private async countWeak (encoder: Encoder): Promise<number> {
    const roots = await this.sourceRoots()
    const candidates = await this.slots.weakImages(minSideOf(encoder))
    let weak = 0
    for (let i = 0; i < candidates.length; i += 64) {
      const imgs = await this.slots.images(candidates.slice(i, i + 64).map((c) => c.id))
      for (const img of imgs) if ((await reembedBytes(img, roots, minSideOf(encoder))) === undefined) weak++
    }
    return weak
  }

  private async missingTotal (): Promise<number> {
    const [a, b] = await Promise.all([this.slots.missingCount('images'), this.slots.missingCount('texts')])
    return a + b
  }

  private async progress (): Promise<SwitchProgress> {
    const { backend } = this.core
    const [images, texts, mi, mt] = await Promise.all([backend.images.count(), backend.texts.count(), this.slots.missingCount('images'), this.slots.missingCount('texts')])
    return { images: { done: images - mi, total: images }, texts: { done: texts - mt, total: texts } }
  }

  private runInBackground (mode: FillMode = 'lead'): void {
    const controller = new AbortController()
    this.controller = controller
    this.running = this.runSwitch(controller.signal, mode)
      .catch((err: unknown) => {
        if (controller.signal.aborted) return
        if (mode === 'help') this.core.logger.warn({ err }, 'model switch: this process stopped embedding batches for the switch (it tries again shortly; the others go on)')
        else this.core.logger.error({ err }, 'model switch stopped; restart the server or POST /v1/models/switch again to resume')
      })
      .finally(() => {
        this.running = undefined
        this.controller = undefined
        // another process may have changed the slots while this one was filling
        if (this.slots.onChange !== undefined) this.follow()
      })
  }

  /**
   * Follows a change another process made to the shared slots: in the same tick, the encoders trade
   * places when the standby model became active (a swap); then, in the background, the models the
   * record names are loaded from MODELS_DIR (a switch begun elsewhere: writes here embed with both)
   * or closed (a standby model deleted elsewhere).
   */
  private follow (): void {
    const core = this.core
    const active = this.slots.active().modelId
    // even during a change of this process's own: a search that saw the swap in the database may re-read the slots first
    if (core.encoder.config.modelId !== active && core.standbyEncoder?.config.modelId === active) this.exchangeEncoders()
    // a switch cancelled, or replaced, in another process: this process stops embedding for it
    const rec = this.slots.standby()
    if (this.filling !== undefined && (rec?.state !== 'building' || rec.modelId !== this.filling)) this.controller?.abort(new Error('the switch ended in another process'))
    // this process's own switch or change holds the encoders it needs
    if (this.running !== undefined || this.changing > 0) return
    this.following = (this.following ?? Promise.resolve()).then(async () => {
      await this.loadRecorded()
      // a switch begun elsewhere, now that this process holds its model: embed batches for it
      this.takeOver()
    })
      .catch((err: unknown) => { core.logger.error({ err }, 'could not follow the model slots another process changed; restart this process to load them') })
  }

  /** Loads (or closes) encoders until this process has those the slots name. */
  private async loadRecorded (): Promise<void> {
    const core = this.core
    const active = this.slots.active()
    if (core.encoder.config.modelId !== active.modelId) {
      if (active.modelDir === undefined) throw new Error(`the active model ${active.modelId} has no recorded folder`)
      const enc = await this.load(active.modelDir, active)
      if (this.slots.active().modelId !== active.modelId || core.encoder.config.modelId === active.modelId) { await enc.close(); return }
      const old = core.encoder
      core.encoder = enc
      core.dim = enc.config.embeddingDim
      core.generation = (core.generation ?? 0) + 1
      if (core.standbyEncoder === undefined && this.slots.standby()?.modelId === old.config.modelId) core.standbyEncoder = old
      else await old.close()
      core.logger.info({ active: active.modelId }, 'the active model changed (another process swapped): following it')
    }
    const rec = this.slots.standby()
    if (rec === undefined) {
      const enc = core.standbyEncoder
      core.standbyEncoder = undefined
      await enc?.close()
      return
    }
    if (core.standbyEncoder?.config.modelId === rec.modelId) return
    if (rec.modelDir === undefined) throw new Error(`the standby model ${rec.modelId} has no recorded folder`)
    const enc = await this.load(rec.modelDir, rec)
    if (this.slots.standby()?.modelId !== rec.modelId) { await enc.close(); return }
    const old = core.standbyEncoder
    core.standbyEncoder = enc
    await old?.close()
    core.logger.info({ standby: rec.modelId, state: rec.state }, 'a standby model was set by another process: writes here embed with it too')
  }

  /**
   * Runs a change of this process's own to the slots: `after` runs right after it, before
   * follow() is told of the change (which it then finds done), so follow() never loads a second
   * copy of a model this process is about to hold.
   */
  private async own (change: () => Promise<unknown>, after?: () => void): Promise<void> {
    this.changing++
    try {
      await change()
      after?.()
    } finally {
      this.changing--
    }
    if (this.slots.onChange !== undefined) this.follow()
  }

  /** the active and standby encoders trade places (a swap), in one tick */
  private exchangeEncoders (): void {
    const core = this.core
    const next = core.standbyEncoder
    if (next === undefined) return
    core.standbyEncoder = core.encoder
    core.encoder = next
    core.dim = next.config.embeddingDim
    core.generation = (core.generation ?? 0) + 1
  }

  /**
   * Fills the standby slot and swaps, where the slots are shared as the one process that leads (the
   * watchdog tries again later). Where another process leads, one that does index work embeds
   * batches beside it until none is left to claim.
   */
  private async runSwitch (signal: AbortSignal, mode: FillMode): Promise<void> {
    const started = Date.now()
    const release = mode === 'help' ? undefined : await this.slots.lead?.()
    const leads = mode !== 'help' && (this.slots.lead === undefined || release !== undefined)
    if (!leads && this.opts.helps !== true) return
    // the lead may have come free because its holder just swapped: this process may not have heard yet
    if (release !== undefined) await this.slots.refresh?.()
    if (leads && mode === 'takeover') this.core.logger.info({ to: this.slots.standby()?.modelId }, 'taking over the model switch no process was running (what was embedded is kept)')
    try {
      if (!(await this.fill(signal, leads)) || !leads) return
      await this.swapNow()
      this.core.logger.info({ active: this.slots.active().modelId, ms: Date.now() - started }, 'model switch complete: swapped')
    } finally {
      await release?.()
    }
  }

  /**
   * Shared slots: a switch under way that no process runs (the one that ran it stopped, and was not
   * restarted) is taken over, keeping what was embedded; one that another process leads is helped
   * where this process does index work.
   */
  private takeOver (): void {
    const rec = this.slots.standby()
    if (rec?.state !== 'building' || this.running !== undefined || this.closed) return
    if (this.core.standbyEncoder?.config.modelId !== rec.modelId) return
    // a switch just begun belongs to the process that began it
    const lead = this.mayLead && Date.now() - Date.parse(rec.since) >= this.takeoverMs
    if (lead) this.runInBackground('takeover')
    else if (this.opts.helps === true) this.runInBackground('help')
  }

  /**
   * Embeds what the standby slot lacks, batch by batch as the backend hands them out; resolves true
   * when nothing is missing any more. Where the slots are shared, a helper returns once nothing is
   * left to claim, and the leader waits for the batches others hold (or claims those whose holder died).
   */
  private async fill (signal: AbortSignal, leads: boolean): Promise<boolean> {
    const encoder = this.core.standbyEncoder
    const rec = this.slots.standby()
    // a complete standby model (a switch swapped meanwhile) is no switch to fill: filling it would swap back
    if (encoder === undefined || rec?.state !== 'building' || encoder.config.modelId !== rec.modelId) return false
    const done = { images: 0, texts: 0 }
    this.filling = rec.modelId
    try {
      for (;;) {
        if (!(await this.fillTexts(signal, encoder, rec, done)) || !(await this.fillImages(signal, encoder, rec, done))) return false
        if (this.slots.claimsLive === undefined) return (await this.missingTotal()) === 0
        if (!leads) return false
        while (await this.slots.claimsLive()) await sleep(this.opts.claimPollMs ?? 500, undefined, { signal })
        if ((await this.missingTotal()) === 0) return true
      }
    } finally {
      this.filling = undefined
      await this.slots.unclaim?.().catch(() => {}) // what it claimed and did not store goes back at once
      if (done.images + done.texts > 0) {
        this.core.logger.info({ images: done.images, texts: done.texts, model: rec.modelId, role: leads ? 'leader' : 'helper' },
          `model switch: embedded ${done.images} images and ${done.texts} texts for the switch`)
      }
    }
  }

  /** texts, until none is left to claim; false when stopped */
  private async fillTexts (signal: AbortSignal, encoder: Encoder, rec: StandbyRecord, done: { texts: number }): Promise<boolean> {
    for (;;) {
      if (signal.aborted) return false
      const ids = await this.slots.missing('texts', TEXT_BATCH)
      if (ids.length === 0) return true
      const texts = await this.slots.texts(ids)
      const vectors = await encoder.encodeTexts(texts.map((t) => textFor(t, encoder)))
      if (signal.aborted) return false
      await this.slots.putStandby('texts', texts.map((t, i) => ({ id: t.id, embedding: vectors[i]! })), rec.modelId)
      done.texts += texts.length
    }
  }

  /** images, until none is left to claim; false when stopped */
  private async fillImages (signal: AbortSignal, encoder: Encoder, rec: StandbyRecord, done: { images: number }): Promise<boolean> {
    const roots = await this.sourceRoots()
    const minSide = minSideOf(encoder)
    const batch = this.opts.batchSize ?? 32
    for (;;) {
      if (signal.aborted) return false
      const ids = await this.slots.missing('images', batch)
      if (ids.length === 0) return true
      const images = await this.slots.images(ids)
      const bytes: Array<Buffer | undefined> = []
      for (const img of images) {
        const found = await reembedBytes(img, roots, minSide)
        if (found !== undefined) bytes.push(found.bytes)
        else if (rec.lowResolution === 'proceed') bytes.push(img.preview?.bytes ?? await this.core.backend.images.thumbnail(img.id))
        else bytes.push(undefined) // 'skip' (or a weak image stored after the switch began): no vector of this model
      }
      const todo = bytes.flatMap((b, i) => b === undefined ? [] : [i])
      const embedded = todo.length === 0 ? [] : await encoder.embedForIngest(todo.map((i) => bytes[i]!), { background: true })
      if (signal.aborted) return false
      const vectors = images.map(() => ZERO(encoder.config.embeddingDim))
      todo.forEach((i, k) => {
        const e = embedded[k]
        if (e !== undefined && !(e instanceof Error)) vectors[i] = e.embedding
        else this.core.logger.warn({ id: images[i]!.id, err: e }, 'model switch: image could not be decoded; left out of the new model')
      })
      await this.slots.putStandby('images', images.map((img, i) => ({ id: img.id, embedding: vectors[i]! })), rec.modelId)
      done.images += images.length
      this.core.logger.debug({ images: images.length, model: rec.modelId }, 'model switch: batch embedded')
    }
  }

  /** The atomic step: the backend exchanges the slots and, in the same tick, the services their encoders. */
  private async swapNow (): Promise<void> {
    const core = this.core
    if (core.standbyEncoder === undefined) throw new ConflictError('the standby model is not loaded')
    await this.own(async () => await this.slots.swap(() => {
      // idempotent: where another process's swap was seen first, the encoders have traded already
      if (core.encoder.config.modelId !== this.slots.active().modelId) this.exchangeEncoders()
    }))
  }
}

/** The smallest shorter side a source image needs for `encoder`'s vision tower, px. */
export function minSideOf (encoder: Encoder): number {
  const s = encoder.inputSize
  return s === undefined ? 0 : Math.max(s.height, s.width)
}

/** what `encoder` embeds for a stored text: as it is, a literal template, or its own template */
function textFor (t: ReembedText, encoder: Encoder): string {
  if (t.template === null) return t.text
  const template = 'model' in t.template ? encoder.config.promptTemplate : t.template.literal
  return formatPrompt({ promptTemplate: template }, t.text)
}

/** The ModelService of a backend, or one that answers 501 where the backend has no model slots. */
export function unsupportedModels (backend: string): ModelService {
  const no = async (): Promise<never> => { throw new NotImplementedError(`model switches are not available on the ${backend} backend yet; see README "Changing the model"`) }
  return { status: no, start: no, swap: no, dropStandby: no, idle: async () => {}, close: async () => {} }
}

export type { CollectionName }
