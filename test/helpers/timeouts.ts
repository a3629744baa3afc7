/** Every test timeout lives here, so a slow machine is tuned in one place. */
export const TIMEOUT = {
  unit: 30_000,
  model: 120_000,
  server: 180_000,
  browser: 300_000,
  soak: 600_000,
  /** one fault test in a process suite (issue 21: each one within 60 s in CI), process starts included */
  fault: 60_000
} as const
