/**
 * float32 against int8 text towers on the same inputs (tools/quantize_int8.py):
 *   node --import tsx scripts/compare-int8.ts models/align-base-shape models/align-base-shape-int8
 * Prints one JSON line: text.onnx sizes, ms per one-word query and per batch of 8 labels (raw session,
 * 1 thread, alternating so both see the same machine load), and the cosine between the two towers' outputs.
 */
import { stat } from 'node:fs/promises'
import path from 'node:path'
import { cosine, loadModelFolder, TextTokenizer } from '../src/ml/index.js'
import type * as Ort from 'onnxruntime-node'
import { ort } from '../src/ml/ort.js'
import { sessionOptions } from '../src/ml/ort-session.js'
import type { TokenBatch } from '../src/ml/index.js'

const [fDir, qDir] = [process.argv[2] ?? 'models/align-base-shape', process.argv[3] ?? 'models/align-base-shape-int8']
const folder = await loadModelFolder(fDir)
const tok = TextTokenizer.fromFile(folder.tokenizerPath, folder.config.maxTextLength, folder.config.usesTokenTypeIds)
const texts = ['cat', 'a photo of a dog', 'two cats on a red sofa', 'sunset over the sea', 'a red car in the street', 'children playing in the park', 'mountain lake', 'a bowl of soup',
  'a black and white portrait of an old man smiling', 'snow on the trees in winter', 'pizza', 'a birthday cake with candles', 'people walking on a beach at sunset', 'a yellow flower', 'office', 'the night sky with stars']

async function open (dir: string): Promise<Ort.InferenceSession> { return await ort.InferenceSession.create(path.join(dir, 'text.onnx'), sessionOptions('cpu', 1)) }
async function run (s: Ort.InferenceSession, b: TokenBatch): Promise<Float32Array> {
  const dims = [b.batch, b.length]
  const out = await s.run({ input_ids: new ort.Tensor('int64', b.inputIds, dims), attention_mask: new ort.Tensor('int64', b.attentionMask, dims), token_type_ids: new ort.Tensor('int64', b.tokenTypeIds ?? new BigInt64Array(b.batch * b.length), dims) })
  return out[s.outputNames[0]!]!.data as Float32Array
}
const [f, q] = [await open(fDir), await open(qDir)]
const cos: number[] = []
for (const t of texts) {
  const b = await tok.encodeBatch([t])
  cos.push(cosine(await run(f, b), await run(q, b)))
}
const one = await tok.encodeBatch(['cat'])
const eight = await tok.encodeBatch(texts.slice(0, 8))
const timing: Record<string, number[]> = { 'f one': [], 'q one': [], 'f eight': [], 'q eight': [] }
for (let r = 0; r < 15; r++) {
  for (const [k, s, b] of [['f one', f, one], ['q one', q, one], ['f eight', f, eight], ['q eight', q, eight]] as const) {
    const t0 = performance.now(); await run(s, b); timing[k]!.push(performance.now() - t0)
  }
}
const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const mib = async (d: string): Promise<number> => Math.round((await stat(path.join(d, 'text.onnx'))).size / 2 ** 20)
console.log(JSON.stringify({
  'text.onnx MiB': { float32: await mib(fDir), int8: await mib(qDir) },
  'median ms, one word': { float32: med(timing['f one']!), int8: med(timing['q one']!) },
  'median ms, batch of 8 texts': { float32: med(timing['f eight']!), int8: med(timing['q eight']!) },
  'cosine int8 vs float32': { min: Math.min(...cos), mean: cos.reduce((a, b) => a + b, 0) / cos.length, texts: cos.length }
}))
