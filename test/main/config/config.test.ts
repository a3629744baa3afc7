import assert from 'node:assert/strict'
import { DEFAULT_TIMEOUTS } from '../../../src/backends/postgres/postgres-options.js'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { ConfigError, ensureDirs, loadConfig } from '../../../src/main/config/config.js'
import { toServicesConfig } from '../../../src/main/wiring/services-config.js'

// every folder a test makes lives under one root, removed when the file's tests end
const root = mkdtempSync(path.join(tmpdir(), 'align-config-'))
after(() => { rmSync(root, { recursive: true, force: true }) })
const tmp = (): string => mkdtempSync(path.join(root, 'cwd-'))

/** the problems of a config that must not load */
function problems (env: Record<string, string>): string[] {
  try {
    loadConfig(env, tmp())
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`)
    return err.problems
  }
  assert.fail(`config ${JSON.stringify(env)} loaded`)
}

describe('loadConfig', () => {
  it('has the documented defaults, with paths resolved against the working directory', () => {
    const cwd = tmp()
    const c = loadConfig({}, cwd)
    assert.equal(c.port, 8080)
    assert.equal(c.host, '0.0.0.0')
    assert.equal(c.modelDir, path.join(cwd, 'models/align-mini'))
    assert.equal(c.dataDir, path.join(cwd, 'index-data'))
    assert.equal(c.importDir, path.join(cwd, 'import'))
    assert.equal(c.executionProvider, 'cpu')
    assert.equal(c.encoderWorkers, 1)
    assert.equal(c.encoderThreads, 1)
    assert.equal(c.apiKey, undefined)
    assert.equal(c.apiKeyReads, false)
    assert.equal(c.rateLimitMax, 0)
    assert.equal(c.rateLimitWindowMs, 60_000)
    assert.equal(c.corsOrigin, undefined)
    assert.equal(c.maxUploadBytes, 20 * 1024 * 1024)
    assert.equal(c.maxFiles, 64)
    assert.equal(c.maxImagePixels, 1e8)
    assert.deepEqual(c.hnsw, { M: 16, efConstruction: 200, efSearch: 64 })
    assert.equal(c.database, undefined, 'no DATABASE_URL: the embedded SQLite backend')
    assert.equal(c.logLevel, 'info')
    // demo/pool does not exist in this cwd: the demo is off rather than an error
    assert.equal(c.demoPoolDir, undefined)
  })

  it('has no side effects: IMPORT_DIR is created by ensureDirs, not by loading', () => {
    const cwd = tmp()
    const c = loadConfig({ IMPORT_DIR: 'imports/here', DATA_DIR: 'data' }, cwd)
    assert.equal(existsSync(c.importDir), false)
    ensureDirs(c)
    assert.equal(existsSync(path.join(cwd, 'imports/here')), true)
    assert.equal(existsSync(path.join(cwd, 'data')), true)
  })

  it('reads every variable', () => {
    const cwd = tmp()
    mkdirSync(path.join(cwd, 'pool'))
    const c = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      MODEL_DIR: '/models/x',
      EXECUTION_PROVIDER: 'cuda',
      ENCODER_WORKERS: '4',
      ENCODER_THREADS: '2',
      INDEX_JOB_NICE: '5',
      API_KEY: 'k'.repeat(16),
      API_KEY_READS: 'true',
      RATE_LIMIT_MAX: '100',
      RATE_LIMIT_WINDOW: '30s',
      CORS_ORIGIN: 'https://a.example, http://localhost:5173',
      MAX_UPLOAD_BYTES: '5MB',
      MAX_FILES: '8',
      MAX_IMAGE_PIXELS: '4e7',
      MAX_BODY_BYTES: '1048576',
      HNSW_M: '32',
      HNSW_EF_CONSTRUCTION: '400',
      HNSW_EF_SEARCH: '128',
      CHECKPOINT_EVERY: '50',
      DATABASE_URL: 'postgresql://align:secret@db.internal:5433/align',
      DATABASE_POOL_SIZE: '4',
      PG_VECTOR_TYPE: 'halfvec',
      LOG_LEVEL: 'debug',
      DEMO_POOL: 'pool'
    }, cwd)
    assert.equal(c.port, 0)
    assert.equal(c.host, '127.0.0.1')
    assert.equal(c.modelDir, '/models/x')
    assert.equal(c.executionProvider, 'cuda')
    assert.equal(c.encoderWorkers, 4)
    assert.equal(c.encoderThreads, 2)
    assert.equal(c.indexJobNice, 5)
    assert.equal(c.apiKey, 'k'.repeat(16))
    assert.equal(c.apiKeyReads, true)
    assert.equal(c.rateLimitMax, 100)
    assert.equal(c.rateLimitWindowMs, 30_000)
    assert.deepEqual(c.corsOrigin, ['https://a.example', 'http://localhost:5173'])
    assert.equal(c.maxUploadBytes, 5 * 1024 * 1024)
    assert.equal(c.maxFiles, 8)
    assert.equal(c.maxImagePixels, 4e7)
    assert.equal(c.maxBodyBytes, 1048576)
    assert.deepEqual(c.hnsw, { M: 32, efConstruction: 400, efSearch: 128 })
    assert.equal(c.checkpointEvery, 50)
    assert.deepEqual({ ...c.database, timeouts: undefined }, { url: 'postgresql://align:secret@db.internal:5433/align', poolSize: 4, vectorType: 'halfvec', timeouts: undefined })
    assert.equal(c.logLevel, 'debug')
    assert.equal(c.demoPoolDir, path.join(cwd, 'pool'))
    assert.equal(loadConfig({ CORS_ORIGIN: '*' }, cwd).corsOrigin, true)
  })

  it('backups: BACKUP_DIR defaults to DATA_DIR/backups, no schedule unless BACKUP_EVERY, BACKUP_KEEP 7', () => {
    const cwd = tmp()
    const dflt = loadConfig({ DEMO_POOL: '', DATA_DIR: 'd' }, cwd)
    assert.equal(dflt.backupDir, path.join(cwd, 'd', 'backups'))
    assert.equal(dflt.backupEveryMs, undefined)
    assert.equal(dflt.backupKeep, 7)
    const set = loadConfig({ DEMO_POOL: '', BACKUP_DIR: '/mnt/b', BACKUP_EVERY: '6h', BACKUP_KEEP: '3' }, cwd)
    assert.deepEqual([set.backupDir, set.backupEveryMs, set.backupKeep], ['/mnt/b', 6 * 3_600_000, 3])
  })

  it('maps onto the services configuration', () => {
    const c = loadConfig({ DEMO_POOL: '', HNSW_M: '24' }, tmp())
    const s = toServicesConfig(c)
    assert.deepEqual(Object.keys(s).sort(), ['backupDir', 'backupEveryMs', 'backupKeep', 'checkpointEvery', 'clusterJobs', 'dataDir', 'database', 'encoderThreads', 'encoderWorkers', 'executionProvider', 'hnsw', 'importDir', 'indexJobNice', 'indexRetryAfterMs', 'indexWorker', 'jobBatchSize', 'keepOriginals', 'maxImagePixels', 'modelDir', 'modelsDir', 'preview'])
    assert.equal(s.hnsw.M, 24)
    assert.equal(s.indexJobNice, 19)
    assert.equal(s.modelDir, c.modelDir)
    assert.equal(s.database, undefined, 'no DATABASE_URL: the embedded backend')
    assert.deepEqual(toServicesConfig(loadConfig({ DEMO_POOL: '', DATABASE_URL: 'postgres://db/align', DATABASE_POOL_SIZE: '4' }, tmp())).database, { url: 'postgres://db/align', poolSize: 4, vectorType: 'vector', timeouts: DEFAULT_TIMEOUTS })
  })

  it('DATABASE_URL chooses PostgreSQL with a pool of 10 and float32 vectors; its password never reaches an error', () => {
    assert.deepEqual(loadConfig({ DATABASE_URL: 'postgres://localhost/align' }, tmp()).database,
      { url: 'postgres://localhost/align', poolSize: 10, vectorType: 'vector', timeouts: { statementTimeoutMs: 30_000, lockTimeoutMs: 10_000, idleInTransactionTimeoutMs: 20_000, tcpUserTimeoutMs: 20_000, keepAliveIdleMs: 10_000, connectTimeoutMs: 5000 } })
    const p = problems({ DATABASE_URL: 'mysql://root:hunter2@db/align' })
    assert.equal(p.length, 1)
    assert.match(p[0]!, /DATABASE_URL must be a postgres:\/\/ or postgresql:\/\/ URL/)
    assert.doesNotMatch(p[0]!, /hunter2/)
    // a password holding '/' makes the URL unparsable: still masked, whole
    assert.match(problems({ DATABASE_URL: 'postgres://align:hun/ter2@db/align' }).join('\n'), /DATABASE_URL is not a valid URL: "postgres:\/\/align:\*\*\*@db\/align" \(percent-encode/)
    for (const url of ['mysql://root:hun/ter2@db/align', 'mysql://root:a@b/c#d?e@db/align', 'postgres://root:hun/ter2@db/align']) {
      const [only] = problems({ DATABASE_URL: url })
      assert.match(only ?? '', /(mysql|postgres):\/\/root:\*\*\*@db\/align/)
      assert.doesNotMatch(only ?? '', /hun|ter2|b\/c/)
    }
  })

  it('every PostgreSQL connection\'s timeouts from PG_*, 0 turning one off; WORKER_HOST apart from HOST, loopback by default', () => {
    const c = loadConfig({ DEMO_POOL: '', DATABASE_URL: 'postgres://db/align', PG_STATEMENT_TIMEOUT: '5s', PG_LOCK_TIMEOUT: '0', PG_IDLE_IN_TRANSACTION_TIMEOUT: '1m', PG_TCP_USER_TIMEOUT: '15s', PG_KEEPALIVE_IDLE: '3s', PG_CONNECT_TIMEOUT: '2s' }, tmp())
    assert.deepEqual(c.database?.timeouts, { statementTimeoutMs: 5000, lockTimeoutMs: 0, idleInTransactionTimeoutMs: 60_000, tcpUserTimeoutMs: 15_000, keepAliveIdleMs: 3000, connectTimeoutMs: 2000 })
    assert.match(problems({ PG_STATEMENT_TIMEOUT: 'soon' }).join('\n'), /PG_STATEMENT_TIMEOUT must be a duration/)
    assert.match(problems({ PG_KEEPALIVE_IDLE: '0' }).join('\n'), /PG_KEEPALIVE_IDLE must be between 1000/)
    assert.deepEqual([c.host, c.workerHost], ['0.0.0.0', '127.0.0.1'])
    assert.equal(loadConfig({ DEMO_POOL: '', WORKER_HOST: '0.0.0.0' }, tmp()).workerHost, '0.0.0.0')
  })

  it('process roles: npm start indexes too unless INDEX_WORKER=off, which needs DATABASE_URL; WORKER_PORT, INDEX_BATCH_SIZE and INDEX_RETRY_AFTER', () => {
    const dflt = loadConfig({ DEMO_POOL: '' }, tmp())
    assert.deepEqual([dflt.indexWorker, dflt.workerPort, dflt.indexBatchSize, dflt.indexRetryAfterMs], [true, undefined, 32, 30_000])
    assert.match(problems({ INDEX_WORKER: 'off' }).join('\n'), /INDEX_WORKER=off needs DATABASE_URL/)
    const api = loadConfig({ DEMO_POOL: '', INDEX_WORKER: 'off', DATABASE_URL: 'postgres://db/align', WORKER_PORT: '9100', INDEX_BATCH_SIZE: '64', INDEX_RETRY_AFTER: '10s' }, tmp())
    assert.deepEqual([api.indexWorker, api.workerPort, api.indexBatchSize, api.indexRetryAfterMs], [false, 9100, 64, 10_000])
    assert.deepEqual([toServicesConfig(api).indexWorker, toServicesConfig(api).jobBatchSize], [false, 64])
    // the cluster fault settings: defaults, and units up to days
    assert.deepEqual(dflt.clusterJobs, { batchTimeoutMs: 600_000, retryLimit: 8, retryDelayMs: 2000, queueRetentionMs: 90 * 86_400_000, failedKeepMs: 7 * 86_400_000, stagingMaxBytes: 8 * 1024 ** 3 })
    const tuned = loadConfig({ DEMO_POOL: '', INDEX_BATCH_TIMEOUT: '90s', INDEX_RETRY_LIMIT: '3', INDEX_RETRY_DELAY: '5s', INDEX_QUEUE_RETENTION: '30d', INDEX_FAILED_KEEP: '1d', STAGING_MAX_BYTES: '2GiB' }, tmp())
    assert.deepEqual(toServicesConfig(tuned).clusterJobs, { batchTimeoutMs: 90_000, retryLimit: 3, retryDelayMs: 5000, queueRetentionMs: 30 * 86_400_000, failedKeepMs: 86_400_000, stagingMaxBytes: 2 * 1024 ** 3 })
    assert.match(problems({ INDEX_RETRY_LIMIT: '-1' }).join('\n'), /INDEX_RETRY_LIMIT/)
    assert.match(problems({ INDEX_RETRY_AFTER: '2s' }).join('\n'), /INDEX_RETRY_AFTER must be between 5000 and 3600000/)
    assert.match(problems({ WORKER_PORT: 'x' }).join('\n'), /WORKER_PORT must be an integer/)
    assert.match(problems({ INDEX_BATCH_SIZE: '0' }).join('\n'), /INDEX_BATCH_SIZE must be between 1 and 1024/)
  })

  it('an empty DEMO_POOL disables the demo; a missing folder is an error', () => {
    assert.equal(loadConfig({ DEMO_POOL: '' }, tmp()).demoPoolDir, undefined)
    assert.match(problems({ DEMO_POOL: 'nope' }).join('\n'), /DEMO_POOL/)
  })

  for (const [name, value, pattern] of [
    ['PORT', 'abc', /PORT must be an integer/],
    ['PORT', '70000', /PORT must be between 0 and 65535/],
    ['PORT', '80.5', /PORT must be an integer/],
    ['EXECUTION_PROVIDER', 'tpu', /EXECUTION_PROVIDER must be one of cpu, cuda/],
    ['ENCODER_WORKERS', '0', /ENCODER_WORKERS must be between 1/],
    ['API_KEY', 'short', /API_KEY must be at least 16 characters/],
    ['API_KEY_READS', 'maybe', /API_KEY_READS must be true or false/],
    ['RATE_LIMIT_MAX', '-1', /RATE_LIMIT_MAX/],
    ['RATE_LIMIT_WINDOW', 'soon', /RATE_LIMIT_WINDOW must be a duration/],
    ['CORS_ORIGIN', 'example.com', /CORS_ORIGIN must be \*/],
    ['MAX_UPLOAD_BYTES', '20 parsecs', /MAX_UPLOAD_BYTES must be a size/],
    ['MAX_FILES', '0', /MAX_FILES must be between 1/],
    ['MAX_IMAGE_PIXELS', 'lots', /MAX_IMAGE_PIXELS/],
    ['MAX_BODY_BYTES', '10', /MAX_BODY_BYTES must be between/],
    ['HNSW_M', '1', /HNSW_M must be between 2/],
    ['INDEX_JOB_NICE', '-5', /INDEX_JOB_NICE must be between 0/],
    ['HNSW_EF_SEARCH', 'x', /HNSW_EF_SEARCH/],
    ['DATABASE_URL', 'localhost:5432', /DATABASE_URL must be a postgres/],
    ['DATABASE_POOL_SIZE', '0', /DATABASE_POOL_SIZE must be between 1/],
    ['PG_VECTOR_TYPE', 'float16', /PG_VECTOR_TYPE must be one of vector, halfvec/],
    ['CHECKPOINT_EVERY', '0', /CHECKPOINT_EVERY/],
    ['BACKUP_EVERY', '10s', /BACKUP_EVERY/],
    ['BACKUP_KEEP', '0', /BACKUP_KEEP/],
    ['LOG_LEVEL', 'loud', /LOG_LEVEL must be one of/]
  ] as const) {
    it(`refuses ${name}=${value}, naming the variable`, () => {
      const p = problems({ [name]: value })
      assert.equal(p.length, 1, p.join('\n'))
      assert.match(p[0] ?? '', pattern)
    })
  }

  it('reports every bad variable at once', () => {
    const p = problems({ PORT: 'x', LOG_LEVEL: 'y', HNSW_M: 'z' })
    assert.equal(p.length, 3)
    try {
      loadConfig({ PORT: 'x', LOG_LEVEL: 'y' }, tmp())
    } catch (err) {
      assert.match((err as Error).message, /PORT[\s\S]*LOG_LEVEL/)
    }
  })

  it('treats blank values as unset', () => {
    const c = loadConfig({ PORT: '', API_KEY: '  ', CORS_ORIGIN: '' }, tmp())
    assert.equal(c.port, 8080)
    assert.equal(c.apiKey, undefined)
    assert.equal(c.corsOrigin, undefined)
  })
})
