/** The k best (label, score) pairs of a stream, in a binary min-heap: O(n log k) for the exact path. */
export class TopK {
  private readonly labels: number[] = []
  private readonly scores: number[] = []

  constructor (private readonly k: number) {}

  push (label: number, score: number): void {
    const { labels, scores } = this
    if (labels.length < this.k) {
      labels.push(label); scores.push(score)
      let i = labels.length - 1
      while (i > 0) {
        const p = (i - 1) >> 1
        if (scores[p]! <= scores[i]!) break
        this.swap(i, p); i = p
      }
    } else if (score > scores[0]!) {
      labels[0] = label; scores[0] = score
      let i = 0
      for (;;) {
        const l = 2 * i + 1; const r = l + 1
        let m = i
        if (l < labels.length && scores[l]! < scores[m]!) m = l
        if (r < labels.length && scores[r]! < scores[m]!) m = r
        if (m === i) break
        this.swap(i, m); i = m
      }
    }
  }

  private swap (a: number, b: number): void {
    const { labels, scores } = this
    const l = labels[a]!; labels[a] = labels[b]!; labels[b] = l
    const s = scores[a]!; scores[a] = scores[b]!; scores[b] = s
  }

  /** best first */
  sorted (): Array<{ label: number, score: number }> {
    return this.labels.map((label, i) => ({ label, score: this.scores[i]! })).sort((a, b) => b.score - a.score)
  }
}
