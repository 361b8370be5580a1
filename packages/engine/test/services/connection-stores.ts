/** What every connection store test needs: opening a store through its layer (closed after the test), fresh keys
 *  and secrets (registered for the run-wide leak scan), waiting for a change, and every text form a secret could take in stored bytes (for the
 *  encryption-at-rest scans). */
import { Effect, type Layer, ManagedRuntime, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { appendFileSync, mkdirSync } from "node:fs"
import { fileURLToPath } from "node:url"
import {
  ConnectionStore,
  type Change,
  type ConnectionStoreError,
  type ConnectionStoreShape
} from "../../src/connection-store.ts"

/** Opens stores from layers and closes them all at once. */
export const makeOpener = () => {
  const runtimes: Array<ManagedRuntime.ManagedRuntime<ConnectionStore, ConnectionStoreError>> = []
  return {
    open: async (layer: Layer.Layer<ConnectionStore, ConnectionStoreError>): Promise<ConnectionStoreShape> => {
      const rt = ManagedRuntime.make(layer)
      runtimes.push(rt)
      return rt.runPromise(Effect.map(ConnectionStore, (s) => s))
    },
    closeAll: () => Promise.all(runtimes.splice(0).map((rt) => rt.dispose()))
  }
}

// The run-wide leak scan (scripts/secret-scan.mjs) also looks for every secret registered here in what tests print.
const registry = fileURLToPath(new URL("../../../../test-results/secrets/", import.meta.url))
const register = (secret: string) => {
  mkdirSync(registry, { recursive: true })
  appendFileSync(`${registry}connection-store-${process.pid}.txt`, `${secret}\n`)
  return secret
}

export const newKey = () => register(randomBytes(32).toString("base64"))
export const redactAll = (keys: ReadonlyArray<string>) => keys.map((k) => Redacted.make(k))
export const newSecret = (label: string) => register(`${label}-${randomBytes(12).toString("hex")}`)

export const run = <A, E>(e: Effect.Effect<A, E>): Promise<A> => Effect.runPromise(e)

/** The failure of `e`, which must fail. */
export const failure = async <A, E>(e: Effect.Effect<A, E>): Promise<E> => Effect.runPromise(Effect.flip(e))

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Polls `check` until it holds or `ms` pass; returns whether it held. */
export const eventually = async (check: () => boolean, ms: number, everyMs = 10): Promise<boolean> => {
  const until = Date.now() + ms
  for (;;) {
    if (check()) return true
    if (Date.now() > until) return false
    await sleep(everyMs)
  }
}

/** A subscriber that records what it is told. */
export const recorder = (store: ConnectionStoreShape) => {
  const seen: Change[] = []
  const unsubscribe = store.subscribe((c) => seen.push(c))
  return { seen, unsubscribe }
}

/** The plain text, hex and base64 (at every byte alignment, as inside a longer encoded run) of a secret. */
export const encodings = (secret: string): string[] => {
  const bytes = Buffer.from(secret, "utf8")
  const out = [secret, bytes.toString("hex"), bytes.toString("hex").toUpperCase()]
  for (let pad = 0; pad < 3; pad++) {
    const b64 = Buffer.concat([Buffer.alloc(pad), bytes]).toString("base64")
    // Drop the characters that depend on the padding bytes before or the unknown bytes after.
    const start = pad === 0 ? 0 : pad === 1 ? 2 : 3
    const inner = b64.slice(start, b64.length - 4)
    out.push(inner, inner.replace(/\+/g, "-").replace(/\//g, "_"))
  }
  return out
}

/** Which of the secrets' encodings occur in `haystack`. */
export const leaks = (haystack: string | Buffer, secrets: ReadonlyArray<string>): string[] => {
  const text = Buffer.isBuffer(haystack) ? haystack.toString("latin1") : haystack
  return secrets.flatMap((s) => encodings(s).filter((e) => text.includes(e)))
}
