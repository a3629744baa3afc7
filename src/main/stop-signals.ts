/**
 * SIGINT and SIGTERM for the entry points (server, CLI): the first asks for a clean stop, a later
 * one for an immediate exit.
 *
 * Ctrl-C in a terminal signals the whole foreground process group, and `npm start` / `npm run`
 * also forward that same SIGINT to the script they run: the process gets it twice within a few
 * milliseconds. A repeat that close to the first is that echo, not a person pressing Ctrl-C again,
 * so it is ignored; otherwise the clean stop (checkpointing the index) would be skipped.
 */

/** A repeat within this many ms of the first stop signal is the same request. */
export const SIGNAL_ECHO_MS = 1000

export type StopSignal = 'SIGINT' | 'SIGTERM'

/**
 * Calls `onStop(signal, again)` for SIGINT and SIGTERM: `again` is false the first time and true for
 * a later signal (past SIGNAL_ECHO_MS). Returns a function that removes the listeners.
 */
export function onStopSignals (onStop: (signal: StopSignal, again: boolean) => void, echoMs = SIGNAL_ECHO_MS): () => void {
  let first: number | undefined
  const listener = (signal: StopSignal): void => {
    const now = performance.now()
    if (first === undefined) {
      first = now
      onStop(signal, false)
    } else if (now - first > echoMs) {
      onStop(signal, true)
    }
  }
  const onInt = (): void => { listener('SIGINT') }
  const onTerm = (): void => { listener('SIGTERM') }
  process.on('SIGINT', onInt)
  process.on('SIGTERM', onTerm)
  return () => {
    process.off('SIGINT', onInt)
    process.off('SIGTERM', onTerm)
  }
}
