/** One memory-reducing garbage collection once the server has loaded, before it listens.
 *
 *  Loading the engine, Effect, the manifests and the config allocates ~30 MB that lives on, and V8 sizes its young
 *  generation by what survived its scavenges: by the time the server listens the semi-spaces have grown from
 *  1 MB to 16 or 32 MB each, and they stay that large. Under traffic the young generation then holds twice what a
 *  server that started small would (bench/README.md, "Issue 14, sixth round"). V8 shrinks it only after a
 *  memory-reducing collection, the kind it runs under memory pressure; this runs one (about 15 ms for a 30 MB heap on this machine).
 *  Nothing else changes: the young generation grows again as traffic needs it.
 *
 *  The collector is reached through a new V8 context: `--expose-gc` is set only while that context is made, so no
 *  `gc` global appears in the server's own context. Where V8 refuses (another runtime, a flag already fixed), the
 *  trim is skipped: it is an optimisation, never a condition of starting. */
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"

type Collect = (options: { type: "major"; execution: "sync"; flavor: "last-resort" }) => void

const collector = (): Collect | undefined => {
  // Started with --expose-gc: use that one and leave the flag as it was.
  const own: unknown = (globalThis as { gc?: unknown }).gc
  if (typeof own === "function") return own as Collect
  setFlagsFromString("--expose-gc")
  try {
    const gc: unknown = runInNewContext("typeof gc === 'function' ? gc : undefined")
    return typeof gc === "function" ? (gc as Collect) : undefined
  } finally {
    setFlagsFromString("--no-expose-gc")
  }
}

/** Runs the collection; true when it ran. */
export const trim = (): boolean => {
  try {
    const gc = collector()
    if (gc === undefined) return false
    gc({ type: "major", execution: "sync", flavor: "last-resort" })
    return true
  } catch {
    return false
  }
}
