import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { clampCosine, cosine } from '../../src/core/vector-math.js'

describe('cosine', () => {
  it('of a vector with itself is exactly 1, never 1.0000000000000002', () => {
    for (let n = 1; n <= 50; n++) {
      const v = Float32Array.from({ length: 16 }, (_, i) => Math.sin(n * (i + 1)))
      const c = cosine(v, v)
      assert.ok(c <= 1 && c > 0.999999, `n=${n}: ${c}`)
      const w = v.map((x) => -x)
      assert.ok(cosine(v, w) >= -1, `n=${n}: ${cosine(v, w)}`)
    }
  })

  it('clampCosine keeps values inside [-1, 1] and leaves the rest alone', () => {
    assert.equal(clampCosine(1.0000000000000002), 1)
    assert.equal(clampCosine(-1.0000001), -1)
    assert.equal(clampCosine(0.25), 0.25)
  })
})
