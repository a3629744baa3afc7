/**
 * Text → token ids with the model folder's tokenizer.json (the `tokenizers` package), truncated to
 * the model's max length, and packed into padded int64 batches for the text tower.
 */
import { Tokenizer } from 'tokenizers'
import { BadRequestError } from '../core/errors.js'
import { ModelFolderError } from './model-folder.js'

/** One tokenized text, unpadded, already truncated to the model's max length. */
export interface TokenizedText {
  ids: number[]
  typeIds: number[]
}

/** A padded int64 batch as the text tower takes it: row-major [batch, length]. */
export interface TokenBatch {
  batch: number
  /** the longest sequence in the batch; shorter ones are padded with padId and mask 0 */
  length: number
  inputIds: BigInt64Array
  attentionMask: BigInt64Array
  /** present when the model's config says uses_token_type_ids */
  tokenTypeIds?: BigInt64Array
}

/**
 * Packs tokenized texts into one padded batch (pad to the longest, right padding).
 * Used by `TextTokenizer.encodeBatch` and by the worker pool when it coalesces several calls.
 */
export function packTokens (items: TokenizedText[], withTypeIds: boolean, padId = 0): TokenBatch {
  const batch = items.length
  const length = items.reduce((m, t) => Math.max(m, t.ids.length), 0)
  const inputIds = new BigInt64Array(batch * length).fill(BigInt(padId))
  const attentionMask = new BigInt64Array(batch * length)
  const tokenTypeIds = withTypeIds ? new BigInt64Array(batch * length) : undefined
  items.forEach((t, r) => {
    const row = r * length
    for (let i = 0; i < t.ids.length; i++) {
      inputIds[row + i] = BigInt(t.ids[i]!)
      attentionMask[row + i] = 1n
      if (tokenTypeIds !== undefined) tokenTypeIds[row + i] = BigInt(t.typeIds[i] ?? 0)
    }
  })
  return tokenTypeIds === undefined ? { batch, length, inputIds, attentionMask } : { batch, length, inputIds, attentionMask, tokenTypeIds }
}

/** The model folder's tokenizer.json (Hugging Face `tokenizers`), truncating to max_text_length. */
export class TextTokenizer {
  readonly padId: number
  private readonly tokenizer: Tokenizer

  private constructor (tokenizer: Tokenizer, readonly maxLength: number, readonly usesTokenTypeIds: boolean) {
    this.tokenizer = tokenizer
    // Padding is ours (pad to the longest across coalesced calls), truncation is the model's limit.
    tokenizer.disablePadding()
    tokenizer.setTruncation(maxLength)
    this.padId = tokenizer.tokenToId('[PAD]') ?? tokenizer.tokenToId('<pad>') ?? 0
  }

  /** Loads tokenizer.json. @param maxLength the model's max_text_length, special tokens included */
  static fromFile (file: string, maxLength: number, usesTokenTypeIds: boolean): TextTokenizer {
    let tok: Tokenizer
    try {
      tok = Tokenizer.fromFile(file)
    } catch (err) {
      throw new ModelFolderError('tokenizer.json', undefined, `cannot load: ${(err as Error).message}`)
    }
    return new TextTokenizer(tok, maxLength, usesTokenTypeIds)
  }

  /** Tokenizes each text (special tokens added, truncated), unpadded. Rejects non-strings with BadRequestError. */
  async encode (texts: string[]): Promise<TokenizedText[]> {
    for (const t of texts) if (typeof t !== 'string') throw new BadRequestError('texts must be strings')
    if (texts.length === 0) return []
    const encodings = await this.tokenizer.encodeBatch(texts)
    return encodings.map((e) => ({ ids: e.getIds(), typeIds: e.getTypeIds() }))
  }

  /** Tokenizes and packs into one padded int64 batch. */
  async encodeBatch (texts: string[]): Promise<TokenBatch> {
    return packTokens(await this.encode(texts), this.usesTokenTypeIds, this.padId)
  }
}
