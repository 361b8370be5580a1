/** Small statistics over samples (times in ms unless said otherwise). */
export const sorted = (xs: ReadonlyArray<number>): number[] => [...xs].sort((a, b) => a - b)

/** Nearest-rank percentile on a sorted copy; p in [0, 100]. */
export const percentile = (xs: ReadonlyArray<number>, p: number): number => {
  if (xs.length === 0) return NaN
  const s = sorted(xs)
  const rank = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))
  return s[rank]!
}

export const median = (xs: ReadonlyArray<number>): number => {
  if (xs.length === 0) return NaN
  const s = sorted(xs)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

export const mean = (xs: ReadonlyArray<number>): number =>
  xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length

export const stddev = (xs: ReadonlyArray<number>): number => {
  if (xs.length < 2) return 0
  const m = mean(xs)
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1))
}

export interface Summary {
  readonly n: number
  readonly median: number
  readonly mean: number
  readonly p95: number
  readonly p99: number
  readonly min: number
  readonly max: number
  readonly stddev: number
}

export const summarize = (xs: ReadonlyArray<number>): Summary => ({
  n: xs.length,
  median: median(xs),
  mean: mean(xs),
  p95: percentile(xs, 95),
  p99: percentile(xs, 99),
  min: Math.min(...xs),
  max: Math.max(...xs),
  stddev: stddev(xs)
})

/** Rounds for JSON/display: 3 significant digits below 100, else integers. */
export const round = (x: number): number =>
  !Number.isFinite(x) ? x : Math.abs(x) >= 100 ? Math.round(x) : Number(x.toPrecision(3))
