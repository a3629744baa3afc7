import { existsSync } from 'node:fs'
import path from 'node:path'

/**
 * The full-size model folder in kakaobrain/align-base's shape (random weights), built on demand by
 * `npm run model:align-shape` (tools/align_shape.py). It is ~650 MB and git-ignored, so tests that
 * need it skip with this reason when it has not been built.
 */
export const ALIGN_BASE_SHAPE_DIR = process.env.ALIGN_BASE_SHAPE_DIR ?? 'models/align-base-shape'
export const ALIGN_BASE_SHAPE_MISSING = `${ALIGN_BASE_SHAPE_DIR} is not built (npm run model:align-shape makes it in a few minutes)`
export const alignBaseShapeBuilt = (): boolean => existsSync(path.join(ALIGN_BASE_SHAPE_DIR, 'vision.onnx'))
