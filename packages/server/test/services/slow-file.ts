/** A log stream that writes each chunk to a file `delayMs` after it is handed one, as a slow disk (or a network
 *  file system) would: the graceful-stop tests check that the server waits for it. */
import { appendFile } from "node:fs"
import { Writable } from "node:stream"

export const slowFile = (path: string, delayMs: number): Writable =>
  new Writable({
    write(chunk: Buffer, _encoding, cb) {
      setTimeout(() => appendFile(path, chunk, cb), delayMs)
    }
  })
