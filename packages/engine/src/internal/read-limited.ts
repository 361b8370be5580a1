/** Reads a text file tessera was pointed at (a config, a manifest, a `${file:...}` secret) without being hurt by what
 *  is actually there: only a regular file is read, and only up to a size limit. A FIFO, a device (/dev/zero,
 *  /dev/stdin), a directory or a huge file gets a refusal saying what it is, instead of a hang, an unbounded
 *  allocation or Node's ERR_STRING_TOO_LONG.
 *
 *  The path is checked with stat before it is opened, opened with O_NONBLOCK (so a FIFO swapped in meanwhile cannot
 *  block the open), checked again on the open descriptor with fstat, and read to at most `limit + 1` bytes (so a
 *  file growing meanwhile is still bounded).
 *  @internal */
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from "node:fs"

export type TextRead =
  | { readonly _tag: "Text"; readonly text: string }
  /** `reason` completes "<path> ...": "is a FIFO (named pipe), not a regular file", "does not exist". `code` is the
   *  errno code when the file system refused (ENOENT, EACCES), else undefined. */
  | { readonly _tag: "Refused"; readonly reason: string; readonly hint: string; readonly code?: string | undefined }

const MiB = 1_048_576

/** "1 MiB", "64 KiB", "1234 bytes". */
export const formatBytes = (n: number): string =>
  n >= MiB && n % MiB === 0 ? `${n / MiB} MiB` : n >= 1024 && n % 1024 === 0 ? `${n / 1024} KiB` : `${n} bytes`

const kindOf = (s: Stats): string | undefined =>
  s.isFile()
    ? undefined
    : s.isDirectory()
      ? "a directory"
      : s.isFIFO()
        ? "a FIFO (named pipe)"
        : s.isCharacterDevice()
          ? "a character device"
          : s.isBlockDevice()
            ? "a block device"
            : s.isSocket()
              ? "a socket"
              : "not a regular file"

const refused = (reason: string, hint: string): TextRead => ({ _tag: "Refused", reason, hint })

const checkStats = (s: Stats, limit: number, hint: string): TextRead | undefined => {
  const kind = kindOf(s)
  if (kind) return refused(`is ${kind}, not a regular file`, hint)
  if (s.size > limit) return refused(`is larger than ${formatBytes(limit)} (${formatBytes(s.size)})`, hint)
  return undefined
}

const errnoText: Record<string, string> = {
  ENOENT: "does not exist",
  EACCES: "cannot be read: permission denied",
  EPERM: "cannot be read: operation not permitted",
  ENOTDIR: "does not exist (a part of the path is not a directory)",
  ELOOP: "cannot be read: too many symbolic links",
  EISDIR: "is a directory, not a regular file"
}

const fromError = (e: unknown): TextRead => {
  const code = (e as NodeJS.ErrnoException).code
  const what = code ? (errnoText[code] ?? "cannot be read") : "cannot be read"
  return {
    _tag: "Refused",
    reason: code ? `${what} (${code})` : `${what}: ${String(e)}`,
    hint: "check the path and the file's permissions",
    code
  }
}

const readAll = (fd: number, limit: number): Buffer => {
  const chunks: Buffer[] = []
  let total = 0
  for (;;) {
    const chunk = Buffer.allocUnsafe(Math.min(65_536, limit + 1 - total))
    const n = readSync(fd, chunk, 0, chunk.length, null)
    if (n === 0) break
    chunks.push(chunk.subarray(0, n))
    total += n
    if (total > limit) break
  }
  return Buffer.concat(chunks, total)
}

const utf8 = new TextDecoder("utf-8", { fatal: true })

/** The file's text (UTF-8, a leading BOM dropped), or why it was not read. `hint` is given with refusals of the
 *  file's type or size, where the caller knows best what the file should have been. */
export const readText = (path: string, limit: number, hint: string): TextRead => {
  let fd: number | undefined
  try {
    const early = checkStats(statSync(path), limit, hint)
    if (early) return early
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0))
    const late = checkStats(fstatSync(fd), limit, hint)
    if (late) return late
    const bytes = readAll(fd, limit)
    if (bytes.length > limit) return refused(`is larger than ${formatBytes(limit)} (it grew while read)`, hint)
    try {
      return { _tag: "Text", text: utf8.decode(bytes) }
    } catch {
      return refused("is not UTF-8 text", hint)
    }
  } catch (e) {
    return fromError(e)
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}
