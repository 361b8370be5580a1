/** Lock files for the file store: one process at a time renews a credential, the others wait and then read its token.
 *
 *  - A lock file records its holder (pid, host, start time, a random nonce) and appears complete or not at all: it
 *    is written in full to a temp file, then hard-linked into place (link fails with EEXIST while it is held).
 *  - A holder that died (Ctrl-C, SIGKILL) is taken over at once when it ran on this host and its pid no longer
 *    exists (`process.kill(pid, 0)` fails with ESRCH). Any other holder is waited for, with a message after
 *    `noticeMs` saying whom; a lock older than the lease is taken over (a holder that hangs, or one on another host).
 *  - Taking over and releasing re-read the file and remove it only while it still holds the nonce seen, so a waiter
 *    does not remove a lock someone else took meanwhile (a window of one read remains; the worst case is two
 *    renewals of one credential, which the engine tolerates).
 *  @internal */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { randomBytes } from "node:crypto"
import { link, stat, unlink, writeFile } from "node:fs/promises"
import { hostname } from "node:os"
import type { StoreError } from "../token-error.ts"
import { fault } from "./cache-dir.ts"
import { readText } from "./read-limited.ts"

export interface Holder {
  readonly pid: number
  readonly host: string
  readonly started_at: string
  readonly nonce: string
}

export interface LockOptions {
  /** How old a lock may be before a waiter takes it over whoever holds it. */
  readonly leaseMs: number
  /** How long a waiter waits before it says whom it waits for. */
  readonly noticeMs: number
}

export interface Held {
  readonly path: string
  readonly nonce: string
}

/** Whether a process with this pid exists on this host. Signal 0 checks without sending anything: ESRCH means
 *  none; EPERM means one we may not signal (another user's), which exists. */
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== "ESRCH"
  }
}

/** The holder a lock file names; undefined when the file is gone, or not in this format (then only its age counts). */
const readHolder = (path: string): Holder | "gone" | undefined => {
  const r = readText(path, 4096, "a lock file holds one small JSON object")
  if (r._tag === "Refused") return r.code === "ENOENT" ? "gone" : undefined
  try {
    const h = JSON.parse(r.text) as Partial<Holder>
    return typeof h.pid === "number" && typeof h.host === "string" && typeof h.nonce === "string"
      ? { pid: h.pid, host: h.host, started_at: String(h.started_at ?? "?"), nonce: h.nonce }
      : undefined
  } catch {
    return undefined
  }
}

const describe = (h: Holder | undefined): string =>
  h ? `pid ${h.pid} on ${h.host}, since ${h.started_at}` : "a holder that left no record"

/** Removes the lock at `path` if it still names the holder seen (undefined: a lock file not in this format). */
const removeIfSame = (path: string, seen: Holder | undefined) =>
  Effect.promise(async () => {
    const now = readHolder(path)
    if (now === "gone") return
    if (
      (now === undefined && seen === undefined) ||
      (now !== undefined && seen !== undefined && now.nonce === seen.nonce)
    )
      await unlink(path).catch(() => undefined)
  })

const ageOf = (path: string) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Effect.promise(() =>
      stat(path).then(
        (s) => now - s.mtimeMs,
        () => undefined
      )
    )
  )

const tryLink = (tmp: string, path: string): Effect.Effect<boolean, StoreError> =>
  Effect.tryPromise({
    try: () =>
      link(tmp, path).then(
        () => true,
        (e: NodeJS.ErrnoException) => {
          if (e.code === "EEXIST") return false
          throw e
        }
      ),
    catch: fault("lock", path)
  })

/** Waits for the lock at `path` and takes it. Fails only when the lock cannot be written at all (a full disk, a
 *  read-only directory); the caller decides whether to go on without it. */
export const acquire = (path: string, opts: LockOptions): Effect.Effect<Held, StoreError> =>
  Effect.gen(function* () {
    const me: Holder = {
      pid: process.pid,
      host: hostname(),
      started_at: new Date(yield* Clock.currentTimeMillis).toISOString(),
      nonce: randomBytes(12).toString("hex")
    }
    const tmp = `${path}.${process.pid}.${me.nonce}.tmp`
    const written = Effect.tryPromise({
      try: () => writeFile(tmp, JSON.stringify(me), { mode: 0o600, flag: "wx" }),
      catch: fault("lock", path)
    })
    const cleanup = Effect.promise(() => unlink(tmp).catch(() => undefined))
    return yield* Effect.andThen(written, waitFor(tmp, path, me, opts)).pipe(Effect.ensuring(cleanup))
  })

/** The lock is held by someone else: try again `now` (it was freed, or its holder is gone), or after the backoff. */
class Busy {
  readonly now: boolean
  constructor(now: boolean) {
    this.now = now
  }
}

/** How a waiter polls: 5 ms doubling to 100 ms; at once when the lock was just freed or taken over. */
const polling = Schedule.min([Schedule.exponential(5, 2), Schedule.spaced(100)]).pipe(
  Schedule.setInputType<Busy | StoreError>(),
  Schedule.while(({ input }) => input instanceof Busy),
  Schedule.modifyDelay(({ input, duration }) => Effect.succeed(input instanceof Busy && input.now ? 0 : duration))
)

/** One try: take the lock, or take over a dead or expired holder's (then Busy(now)), or say whom we wait for. */
const tryOnce = (
  tmp: string,
  path: string,
  me: Holder,
  opts: LockOptions,
  notice: (holder: Holder | undefined) => Effect.Effect<void>
): Effect.Effect<Held, Busy | StoreError> =>
  Effect.gen(function* () {
    if (yield* tryLink(tmp, path)) return { path, nonce: me.nonce }
    const holder = readHolder(path)
    const age = yield* ageOf(path)
    if (holder === "gone" || age === undefined) return yield* Effect.fail(new Busy(true)) // released meanwhile
    if (holder && holder.host === me.host && holder.pid !== me.pid && !isAlive(holder.pid)) {
      yield* Effect.logDebug(`taking over the cache lock ${path}: ${describe(holder)}, no longer running`)
      yield* removeIfSame(path, holder)
      return yield* Effect.fail(new Busy(true))
    }
    if (age > opts.leaseMs) {
      yield* Effect.logWarning(
        `taking over the cache lock ${path} after ${Math.round(age / 1000)} s: held by ${describe(holder)}, longer than its ${Math.round(opts.leaseMs / 1000)} s lease`
      )
      yield* removeIfSame(path, holder)
      return yield* Effect.fail(new Busy(true))
    }
    yield* notice(holder)
    return yield* Effect.fail(new Busy(false))
  })

const waitFor = (tmp: string, path: string, me: Holder, opts: LockOptions): Effect.Effect<Held, StoreError> =>
  Effect.gen(function* () {
    const start = yield* Clock.currentTimeMillis
    let noticed = false
    // Once, after `noticeMs`: whom we wait for, so a user sees why the command is slow.
    const notice = (holder: Holder | undefined) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        if (noticed || now - start < opts.noticeMs) return Effect.void
        noticed = true
        return Effect.logWarning(
          `waiting for the cache lock ${path}, held by ${describe(holder)} (another tessera renewing this token; taken over after ${Math.round(opts.leaseMs / 1000)} s at most)`
        )
      })
    // `polling` stops only on a StoreError: a Busy is always tried again.
    return yield* tryOnce(tmp, path, me, opts, notice).pipe(
      Effect.retry(polling),
      Effect.catch((e) => (e instanceof Busy ? Effect.die(new Error("lock polling ended while busy")) : Effect.fail(e)))
    )
  })

/** Removes our lock unless someone took it over meanwhile. */
export const release = (held: Held): Effect.Effect<void> =>
  Effect.promise(async () => {
    const now = readHolder(held.path)
    if (now !== "gone" && now?.nonce === held.nonce) await unlink(held.path).catch(() => undefined)
  })
