/** Liveness of the processes sharing a PostgreSQL connection store, and what renewal does with it: an owner is alive
 *  while its process holds its mark (a session advisory lock), dead within about a second of a SIGKILL of that
 *  process, never dead while PostgreSQL cannot be asked, after a restart or after its session was terminated (the
 *  owner takes its mark again), not said held while its session ended with no word to it (a half-open connection,
 *  through a relay) and holding it again soon after, its session kept through a busy event loop, nor dead on two
 *  looks with a long silence between them; a process with nothing else to do completes marking an owner and then
 *  exits; a role refused the lock function is not marked and does not reconnect over and over, one refused the
 *  probe is unknown; and a grant rotation claimed
 *  by a killed process is taken over in about a second instead of at the end of its lease, while one claimed by a
 *  live process is still waited on. Real PostgreSQL (the shared server, a schema per test, and private clusters for
 *  the restarts and the restricted role), real child processes, and a TCP relay for the half-open connection. */
import { Effect, Exit, Redacted, Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { startGrantServer, type GrantServer } from "@tessera/testkit/grant-server"
import * as Postgres from "../src/connection-store-postgres.ts"
import type { ConnectionStoreShape } from "../src/connection-store.ts"
import * as Grants from "../src/grants.ts"
import { defaults as livenessDefaults, keyOf } from "../src/internal/postgres-liveness.ts"
import { makeMemory } from "../src/token-store.ts"
import { newKey, redactAll } from "./services/connection-stores.ts"
import { consent, grantInputs, makeGrantEngine } from "./services/grant-engine.ts"
import { databaseUrl, describePostgres, dropSchemas, rawClient, uniqueSchema } from "./services/postgres-available.ts"
import { canRunPostgres, postgresServer, type PostgresServer } from "./services/postgres-server.ts"
import { tcpRelay } from "./services/tcp-relay.ts"

const worker = fileURLToPath(new URL("./services/liveness-worker.ts", import.meta.url))
const onceWorker = fileURLToPath(new URL("./services/liveness-once-worker.ts", import.meta.url))
const keys = [newKey()]
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** An owner id as renewal makes them, watched. */
const newOwner = () => Grants.watchedOwner(randomBytes(9).toString("base64url"))

const schemas: string[] = []
const children: ChildProcess[] = []
const scopes: Scope.Closeable[] = []
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL")
  await Promise.all(scopes.splice(0).map((s) => Effect.runPromise(Scope.close(s, Exit.void))))
  await dropSchemas(schemas.splice(0))
})

/** A store of this process, open until the test ends (or `close`). */
const openStore = async (url = databaseUrl, schema = schemas[0]!) => {
  const scope = Effect.runSync(Scope.make())
  scopes.push(scope)
  const store = await Effect.runPromise(
    Scope.provide(Postgres.make({ url, encryptionKeys: redactAll(keys), schema, connectTimeoutMs: 1000 }), scope)
  )
  return { store, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

/** A child process that marks `owner` alive in the store at `url`; resolves once its mark is held. */
const markedBy = (owner: string, url = databaseUrl, schema = schemas[0]!) =>
  new Promise<ChildProcess>((resolve, reject) => {
    const child = spawn(process.execPath, [worker, url, schema, owner], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, TESSERA_TEST_KEYS: keys.join(",") }
    })
    children.push(child)
    let stderr = ""
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString()
    })
    child.on("exit", (code, signal) => reject(new Error(`worker ended (${code ?? signal}): ${stderr}`)))
    createInterface({ input: child.stdout }).on("line", (l) =>
      l === "held" ? resolve(child) : reject(new Error(`worker: ${l}`))
    )
  })

const kill = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    child.once("exit", () => resolve())
    child.kill("SIGKILL")
  })

const dead = (store: ConnectionStoreShape, owner: string) => Effect.runPromise(store.liveness!.dead(owner))

/** Asks every 200 ms until `owner` is dead; how long that took (ms), or Infinity after `withinMs`. */
const timeToDead = async (store: ConnectionStoreShape, owner: string, withinMs: number) => {
  const t = performance.now()
  while (performance.now() - t < withinMs) {
    if (await dead(store, owner)) return performance.now() - t
    await sleep(200)
  }
  return Infinity
}

/** Asks every 200 ms for `forMs`: whether `owner` was ever seen dead, and how many answers failed (unknown). */
const watch = async (store: ConnectionStoreShape, owner: string, forMs: number) => {
  let seenDead = false
  let failed = 0
  const t = performance.now()
  while (performance.now() - t < forMs) {
    const r = await Effect.runPromise(Effect.result(store.liveness!.dead(owner)))
    if (r._tag === "Failure") failed++
    else if (r.success) seenDead = true
    await sleep(200)
  }
  return { seenDead, failed }
}

/** The modes of the advisory locks on `owner`'s key, found as PostgreSQL splits a one-bigint key (its high and low
 *  32 bits, unsigned, in classid and objid; objsubid 1), computed here from the key by PostgreSQL itself. */
const advisoryLocks = async (owner: string) => {
  const c = await rawClient()
  try {
    const r = await c.query(
      `SELECT mode FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1
        AND classid::bigint = ($1::bigint >> 32) & 4294967295 AND objid::bigint = $1::bigint & 4294967295`,
      [keyOf(owner).key]
    )
    return r.rows.map((x: { mode: string }) => x.mode)
  } finally {
    await c.end()
  }
}

/** The pids of the sessions holding an advisory lock on `owner`'s key. */
const advisoryPids = async (owner: string) => {
  const c = await rawClient()
  try {
    const r = await c.query(
      `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1
        AND classid::bigint = ($1::bigint >> 32) & 4294967295 AND objid::bigint = $1::bigint & 4294967295`,
      [keyOf(owner).key]
    )
    return r.rows.map((x: { pid: number }) => x.pid)
  } finally {
    await c.end()
  }
}

describePostgres("liveness on PostgreSQL", () => {
  it("an owner is alive while its process runs, and dead within about a second of a SIGKILL of it", async () => {
    schemas.push(uniqueSchema())
    const { store } = await openStore()
    const owner = newOwner()
    const child = await markedBy(owner)
    expect(await advisoryLocks(owner)).toEqual(["ShareLock"])
    // Alive for as long as it runs: asked over more than the confirmation time, never dead.
    expect(await watch(store, owner, 1_600)).toEqual({ seenDead: false, failed: 0 })
    await kill(child)
    const took = await timeToDead(store, owner, 5_000)
    console.log(`owner killed: known dead after ${Math.round(took)} ms`)
    expect(took).toBeGreaterThanOrEqual(900)
    expect(took).toBeLessThan(2_500)
    // The probes took no lock (a pooled connection keeps none).
    expect(await advisoryLocks(owner)).toEqual([])
  }, 20_000)

  it.each([
    ["set", true],
    ["clear", false]
  ])(
    "an owner of this process, its key's top bit %s: alive to another store; closing its store ends its mark",
    async (_, top) => {
      schemas.push(uniqueSchema())
      const mine = await openStore()
      const other = await openStore()
      let owner = newOwner()
      while (keyOf(owner).key.startsWith("-") !== top) owner = newOwner()
      expect(await Effect.runPromise(mine.store.liveness!.register(owner))).toBe(true)
      expect(await Effect.runPromise(mine.store.liveness!.register(owner))).toBe(true)
      expect(await advisoryLocks(owner)).toEqual(["ShareLock"])
      expect(await watch(other.store, owner, 1_400)).toEqual({ seenDead: false, failed: 0 })
      await mine.close()
      expect(await advisoryLocks(owner)).toEqual([])
      expect(await timeToDead(other.store, owner, 5_000)).toBeLessThan(2_500)
    },
    20_000
  )
})

describePostgres("liveness in a process with nothing else to do", () => {
  it("marking an owner completes (the process does not exit in the middle of it), and the process then exits", async () => {
    schemas.push(uniqueSchema())
    const child = spawn(process.execPath, [onceWorker, databaseUrl, schemas[0]!, newOwner()], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, TESSERA_TEST_KEYS: keys.join(",") }
    })
    children.push(child)
    let out = ""
    let err = ""
    child.stdout.on("data", (c: Buffer) => (out += c.toString()))
    child.stderr.on("data", (c: Buffer) => (err += c.toString()))
    const t = performance.now()
    const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)))
    expect({ out, code }, err).toEqual({ out: "held\n", code: 0 })
    expect(performance.now() - t).toBeLessThan(8_000)
  }, 20_000)
})

describePostgres("liveness when the mark's session is ended while its process lives", () => {
  it("a terminated backend: the owner takes its mark again at once, and is never seen dead", async () => {
    schemas.push(uniqueSchema())
    const mine = await openStore()
    const other = await openStore()
    const owner = newOwner()
    expect(await Effect.runPromise(mine.store.liveness!.register(owner))).toBe(true)
    const holder = async () => {
      const c = await rawClient()
      try {
        const { hi, lo } = keyOf(owner)
        const r = await c.query(
          "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid::bigint = $1 AND objid::bigint = $2",
          [hi, lo]
        )
        return r.rows.map((x: { pid: number }) => x.pid)
      } finally {
        await c.end()
      }
    }
    const [before] = await holder()
    expect(before).toBeDefined()
    const c = await rawClient()
    try {
      expect((await c.query("SELECT pg_terminate_backend($1) AS done", [before])).rows[0].done).toBe(true)
    } finally {
      await c.end()
    }
    expect(await watch(other.store, owner, 2_000)).toEqual({ seenDead: false, failed: 0 })
    const after = await holder()
    expect(after).toHaveLength(1)
    expect(after[0]).not.toBe(before)
  }, 20_000)
})

describePostgres("liveness asked seldom", () => {
  it("a lock missing at two looks with a long silence between them is not dead: the owner may have held it meanwhile", async () => {
    schemas.push(uniqueSchema())
    const { store } = await openStore()
    const owner = newOwner()
    // The owner's mark, held by a session of its own, lost twice (two brief drops, held again between them).
    const holder = await rawClient()
    try {
      const take = () => holder.query("SELECT pg_advisory_lock_shared($1::bigint)", [keyOf(owner).key])
      const lose = () => holder.query("SELECT pg_advisory_unlock_shared($1::bigint)", [keyOf(owner).key])
      await take()
      expect(await dead(store, owner)).toBe(false)
      await lose()
      expect(await dead(store, owner)).toBe(false)
      await take()
      await sleep(3_000)
      await lose()
      // Missing at this look and at one 3 s before, but held between them, unseen: not proof of death.
      expect(await dead(store, owner)).toBe(false)
      // Missing at looks close together for a second: dead.
      expect(await timeToDead(store, owner, 3_000)).toBeLessThan(1_700)
    } finally {
      await holder.end()
    }
  }, 20_000)
})

describePostgres("liveness when the mark's session ends with no word to its process (a half-open connection)", () => {
  it("the owner is not said held while its session is gone, and takes its mark again on a new one", async () => {
    schemas.push(uniqueSchema())
    const relay = await tcpRelay("127.0.0.1", Number(new URL(databaseUrl).port || 5432))
    try {
      const via = new URL(databaseUrl)
      via.hostname = "127.0.0.1"
      via.port = String(relay.port)
      const mine = await openStore(via.toString())
      const other = await openStore()
      const owner = newOwner()
      expect(await Effect.runPromise(mine.store.liveness!.register(owner))).toBe(true)
      expect(await advisoryLocks(owner)).toEqual(["ShareLock"])
      // The server's side of every relayed connection closed: PostgreSQL ends those sessions (the mark with them);
      // the process's sockets stay open and hear nothing.
      relay.sever()
      const t = performance.now()
      while ((await advisoryLocks(owner)).length > 0 && performance.now() - t < 2_000) await sleep(20)
      expect(await advisoryLocks(owner)).toEqual([])
      // Its mark is not held: a claim made now must not name it as watched.
      expect(await Effect.runPromise(mine.store.liveness!.register(owner))).toBe(false)
      // And it takes its mark again on a new connection, soon (not never).
      const back = performance.now()
      while ((await advisoryLocks(owner)).length === 0 && performance.now() - back < 5_000) await sleep(100)
      expect(await advisoryLocks(owner)).toEqual(["ShareLock"])
      console.log(`half-open: mark taken again ${Math.round(performance.now() - t)} ms after the session ended`)
      expect(await Effect.runPromise(mine.store.liveness!.register(owner))).toBe(true)
      expect(await dead(other.store, owner)).toBe(false)
    } finally {
      await relay.close()
    }
  }, 30_000)

  it("a process whose event loop was busy past the answer's deadline keeps its session: the answer came meanwhile", async () => {
    schemas.push(uniqueSchema())
    const mine = await openStore()
    const owner = newOwner()
    expect(await Effect.runPromise(mine.store.liveness!.register(owner))).toBe(true)
    const [before] = await advisoryPids(owner)
    const asked = Effect.runPromise(mine.store.liveness!.register(owner))
    // Busy (a long synchronous task, a GC pause) for longer than an answer may take, while the answer arrives.
    const until = performance.now() + livenessDefaults.pingTimeoutMs + 500
    while (performance.now() < until);
    expect(await asked).toBe(true)
    expect(await advisoryPids(owner)).toEqual([before])
  }, 20_000)
})

const describeCluster = canRunPostgres || process.env["CI"] === "true" ? describe : describe.skip
if (!canRunPostgres) console.log("SKIP liveness restart tests: needs PostgreSQL's binaries (initdb, pg_ctl)")

describeCluster("liveness across a PostgreSQL outage (a private cluster)", () => {
  let pg: PostgresServer
  beforeAll(async () => {
    pg = await postgresServer()
  }, 60_000)
  afterAll(() => pg?.destroy())

  it("restarted: the live owner takes its mark again and is never seen dead; unreachable is unknown, not dead", async () => {
    const schema = uniqueSchema()
    const prober = await openStore(pg.url, schema)
    const owner = newOwner()
    const child = await markedBy(owner, pg.url, schema)
    expect(await watch(prober.store, owner, 1_200)).toEqual({ seenDead: false, failed: 0 })
    pg.stop()
    // Down: every answer fails (unknown), none says dead.
    const down = await watch(prober.store, owner, 1_500)
    expect(down.seenDead).toBe(false)
    expect(down.failed).toBeGreaterThan(3)
    pg.start()
    // Back: within the grace after a restart, and well after it, the owner (which took its mark again) is alive.
    const back = await watch(prober.store, owner, livenessDefaults.graceMs + 2_500)
    expect(back.seenDead).toBe(false)
    expect(await dead(prober.store, owner)).toBe(false)
    // Killed now, it is found dead.
    await kill(child)
    expect(await timeToDead(prober.store, owner, 5_000)).toBeLessThan(2_500)
  }, 60_000)
})

describeCluster("liveness for a role PostgreSQL refuses the lock function or the probe (a private cluster)", () => {
  let pg: PostgresServer
  beforeAll(async () => {
    pg = await postgresServer()
  }, 60_000)
  afterAll(() => pg?.destroy())

  it("its mark refused: not held, and its one session kept (no reconnecting); its probe refused: unknown, never dead", async () => {
    const admin = await rawClient(pg.url)
    try {
      await admin.query("CREATE ROLE tessera_restricted LOGIN")
      await admin.query("GRANT CREATE ON DATABASE postgres TO tessera_restricted")
      await admin.query("REVOKE EXECUTE ON FUNCTION pg_try_advisory_lock_shared(bigint) FROM PUBLIC")
      const url = new URL(pg.url)
      url.username = "tessera_restricted"
      const { store } = await openStore(url.toString(), uniqueSchema())
      const owner = newOwner()
      expect(await Effect.runPromise(store.liveness!.register(owner))).toBe(false)
      // The liveness sessions seen over 2 s: the one, kept (not one short-lived reconnect after another, each
      // refused again, twice a second for as long as the process runs).
      const pids = new Set<number>()
      const t = performance.now()
      while (performance.now() - t < 2_000) {
        const r = await admin.query<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE application_name = 'tessera liveness'"
        )
        for (const { pid } of r.rows) pids.add(pid)
        await sleep(20)
      }
      expect(pids.size).toBe(1)
      expect(await Effect.runPromise(store.liveness!.register(owner))).toBe(false)
      // The probe refused (no EXECUTE on pg_postmaster_start_time): every answer fails, none says dead.
      await admin.query("REVOKE EXECUTE ON FUNCTION pg_postmaster_start_time() FROM PUBLIC")
      const refused = await watch(store, owner, 1_500)
      expect(refused.seenDead).toBe(false)
      expect(refused.failed).toBeGreaterThan(3)
    } finally {
      await admin.end()
    }
  }, 60_000)
})

/** The grant of `app` on the shared server, and an engine over it (a token cache of its own). */
let gs: GrantServer | undefined
afterEach(async () => {
  await gs?.close()
  gs = undefined
})

const withGrant = async (store: ConnectionStoreShape, tokenDelayMs?: number) => {
  gs = await startGrantServer(tokenDelayMs === undefined ? {} : { tokenDelayMs })
  const connections = { app: { provider: "oauth2", inputs: grantInputs(gs) } }
  const e = await makeGrantEngine({ connections, connectionStore: store, tokenStore: makeMemory() })
  const p = await e.run(e.engine.grants.authorize("app", "http://127.0.0.1:5555/callback"))
  await e.run(e.engine.grants.complete("app", p, await consent(p.url)))
  return { e, gs }
}

/** Claims the rotation of app's grant for `owner`, for `leaseMs`, as a renewal of that owner would. */
const claimFor = async (store: ConnectionStoreShape, owner: string, leaseMs: number) => {
  const g = (await Effect.runPromise(Grants.read(store, "app")))!
  const won = await Effect.runPromise(
    Grants.claim(store, { name: "app", binding: g.binding! }, g, owner, Date.now() + leaseMs)
  )
  expect(won).toBe(true)
}

/** A forced renewal of app, timed; `settled` says whether it has ended yet. */
const renewal = (e: Awaited<ReturnType<typeof withGrant>>["e"]) => {
  const t = performance.now()
  let settled = false
  const done = e.run(e.engine.getToken("app", { force: true })).then((r) => {
    settled = true
    return { r, ms: performance.now() - t }
  })
  return { done, settled: () => settled }
}

describePostgres("renewal and a claim by another process", () => {
  it("a claim by a killed process (lease 10 min) is taken over in about a second; under a plain name, at its lease's end", async () => {
    schemas.push(uniqueSchema())
    const { store } = await openStore()
    const { e, gs } = await withGrant(store)
    const plain = randomBytes(9).toString("base64url")
    const owner = Grants.watchedOwner(plain)
    const child = await markedBy(owner)
    await claimFor(store, owner, 600_000)
    await kill(child)
    const { r, ms } = await renewal(e).done
    console.log(`claim of a killed process taken over after ${Math.round(ms)} ms`)
    expect(r.decision.action).toBe("refreshed")
    expect(ms).toBeLessThan(3_000)
    // The dead claimer had not redeemed it: the refresh token it left was good, and used once.
    expect(gs.reused).toEqual([])
    const g = await Effect.runPromise(Grants.read(store, "app"))
    expect(g?.detail).toBeUndefined()
    expect(gs.live()).toEqual([Redacted.value(g!.refreshToken)])
    // The same dead process's claim under its plain name (a process whose mark was not held, or an older version's
    // claim): never asked about, waited on until its lease (3 s) ends.
    await claimFor(store, plain, 3_000)
    const again = await renewal(e).done
    expect(again.r.decision.action).toBe("refreshed")
    expect(again.ms).toBeGreaterThan(2_500)
  }, 20_000)

  it("a claim by a live process is waited on; killed, it is taken over within about a second", async () => {
    schemas.push(uniqueSchema())
    const { store } = await openStore()
    const { e } = await withGrant(store)
    const owner = newOwner()
    const child = await markedBy(owner)
    await claimFor(store, owner, 600_000)
    const run = renewal(e)
    await sleep(2_500)
    expect(run.settled()).toBe(false)
    const killedAt = performance.now()
    await kill(child)
    const { r } = await run.done
    const after = performance.now() - killedAt
    console.log(`claim taken over ${Math.round(after)} ms after its process was killed`)
    expect(r.decision.action).toBe("refreshed")
    expect(after).toBeLessThan(3_000)
  }, 20_000)
})

describePostgres("renewal's own claims", () => {
  it("are made under the watched name while the store holds this process's mark, and another engine waits on them", async () => {
    schemas.push(uniqueSchema())
    const { store } = await openStore()
    const { e, gs } = await withGrant(store, 1_500)
    const run = renewal(e)
    // While the provider answers (1.5 s), the claim names this process as watched, and it is alive.
    await sleep(500)
    const claimed = Grants.claimOf((await Effect.runPromise(Grants.read(store, "app")))!)
    expect(claimed && Grants.isWatched(claimed.owner)).toBe(true)
    // Another engine (a store of its own: another session) waits on the live claim instead of taking it over.
    const { store: second } = await openStore()
    const other = await makeGrantEngine({
      connections: { app: { provider: "oauth2", inputs: grantInputs(gs) } },
      connectionStore: second,
      tokenStore: makeMemory()
    })
    const waited = await other.run(other.engine.getToken("app"))
    expect(waited.decision.action).toBe("refreshed")
    expect((await run.done).r.decision.action).toBe("refreshed")
    expect(gs.reused).toEqual([])
    expect(new Set(gs.redeemed).size).toBe(gs.redeemed.length)
  }, 20_000)
})

describeCluster("renewal while liveness cannot be asked (a private cluster stopped)", () => {
  let pg: PostgresServer
  beforeAll(async () => {
    pg = await postgresServer()
  }, 60_000)
  afterAll(() => pg?.destroy())

  it("a killed claimer's claim is waited on while its liveness is unknown, and taken over once it can be asked", async () => {
    // Grants on the shared server; liveness on the private cluster (where the claimer kept its mark).
    schemas.push(uniqueSchema())
    const { store: grants } = await openStore()
    const { store: private_ } = await openStore(pg.url, uniqueSchema())
    const store: ConnectionStoreShape = { ...grants, liveness: private_.liveness }
    const { e } = await withGrant(store)
    const owner = newOwner()
    const child = await markedBy(owner, pg.url, uniqueSchema())
    await claimFor(store, owner, 600_000)
    await kill(child)
    pg.stop()
    const run = renewal(e)
    await sleep(3_000)
    expect(run.settled()).toBe(false)
    const backAt = performance.now()
    pg.start()
    const { r } = await run.done
    const after = performance.now() - backAt
    console.log(`taken over ${Math.round(after)} ms after PostgreSQL came back`)
    expect(r.decision.action).toBe("refreshed")
    // Not before PostgreSQL had been up for the grace, nor long after.
    expect(after).toBeGreaterThan(livenessDefaults.graceMs - 1_000)
    expect(after).toBeLessThan(livenessDefaults.graceMs + 4_000)
  }, 60_000)
})
