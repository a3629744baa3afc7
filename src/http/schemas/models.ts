/** /v1/models shapes: the active model, the standby one, and a switch's progress. */
import { Type, type Static } from '@sinclair/typebox'
import { StringEnum } from './common.js'

const Count = Type.Object({ done: Type.Integer(), total: Type.Integer() })

export const ModelsStatus = Type.Object({
  active: Type.Object({
    modelId: Type.String(),
    dim: Type.Integer(),
    modelDir: Type.Optional(Type.String({ description: 'the model folder, relative to MODELS_DIR when under it' }))
  }),
  standby: Type.Union([Type.Object({
    modelId: Type.String(),
    dim: Type.Integer(),
    modelDir: Type.Optional(Type.String()),
    state: StringEnum(['building', 'ready'], { description: 'building: a switch is embedding into it; ready: complete (after a swap: the previous model, kept for a swap back)' }),
    since: Type.String({ description: 'when it entered this state (ISO time)' }),
    lowResolution: Type.Optional(StringEnum(['skip', 'proceed'])),
    skipped: Type.Optional(Type.Integer({ description: 'images left out of this model (no source or preview large enough, lowResolution "skip")' })),
    progress: Type.Optional(Type.Object({ images: Count, texts: Count }))
  }), Type.Null()], { description: 'the model beside the active one; null when none' }),
  running: Type.Boolean({ description: 'a switch is embedding now' })
}, { title: 'ModelsStatus' })
export type ModelsStatusT = Static<typeof ModelsStatus>

export const SwitchBody = Type.Object({
  modelDir: Type.String({ minLength: 1, maxLength: 1024, description: 'the new model folder, relative to MODELS_DIR' }),
  lowResolution: Type.Optional(StringEnum(['skip', 'proceed'], {
    description: 'images with neither a readable source nor a preview large enough for the new model: "skip" leaves them out of it, "proceed" embeds them from the smaller preview. Without it such images make the request fail with 409, naming how many'
  }))
}, { additionalProperties: false, title: 'ModelSwitchRequest', examples: [{ modelDir: 'align-base' }] })
export type SwitchBodyT = Static<typeof SwitchBody>
