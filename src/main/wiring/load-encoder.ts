/** Loads the model as ServicesConfig describes it: the API process and an index worker load it the same way. */
import { loadEncoder } from '../../ml/index.js'
import type { Encoder } from '../../ml/types.js'
import type { Logger } from '../../core/types.js'
import type { ServicesConfig } from './services-config.js'

export async function loadConfiguredEncoder (config: ServicesConfig, logger: Logger): Promise<Encoder> {
  return await (config.loadEncoder ?? loadEncoder)({
    modelDir: config.modelDir,
    executionProvider: config.executionProvider,
    workers: config.encoderWorkers,
    threads: config.encoderThreads,
    maxImagePixels: config.maxImagePixels,
    ...(config.indexJobNice === undefined ? {} : { backgroundNice: config.indexJobNice }),
    logger
  })
}
