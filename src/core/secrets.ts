/**
 * Connection strings as they may be printed: a password never reaches a log line, an error
 * message or an answer. Pure string work, for config (main) and the PostgreSQL adapter alike.
 */

/** `raw` with everything between the user's ':' and the last '@' replaced by `***` */
export function withoutPassword (raw: string): string {
  // not through URL: a password holding '/', '#', '?' or '@' breaks the parse, or parses partly
  // into the host and path, which would then be printed
  return raw.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:).*@/i, '$1***@')
}
