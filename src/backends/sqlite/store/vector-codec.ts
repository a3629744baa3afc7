/** Float32Array ⇄ SQLite BLOB (little-endian float32, as the machine stores them). */

/** A Buffer view of the vector's bytes (no copy; better-sqlite3 copies on bind). */
export function vectorToBlob (v: Float32Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength)
}

/** A fresh, 4-byte aligned Float32Array from a BLOB; throws when the length is not `dim` floats. */
export function blobToVector (blob: Buffer, dim: number): Float32Array {
  if (blob.byteLength !== dim * 4) {
    throw new Error(`stored embedding has ${blob.byteLength} bytes, expected ${dim * 4} (dim ${dim})`)
  }
  const out = new Float32Array(dim)
  new Uint8Array(out.buffer).set(blob)
  return out
}
