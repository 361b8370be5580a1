/** The connection store contract, one suite for every implementation (memory, SQLite, PostgreSQL): records and
 *  versions, byte-ordered pages with tag filters, grants compared and set on their version, changes to
 *  subscribers (once, also from another instance), key rotation with `reencrypt`, 10k connections, and the webhook
 *  outbox (idempotent adds, claims under a lease, retries, dead messages, instances claiming at once).
 *  Each `*-store-*.test.ts` calls `runConnectionStoreSuite` with its backend. */
import { Effect, Redacted } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import {
  ConnectionStoreError,
  type ConnectionRecord,
  type ConnectionStoreShape,
  type PutInput
} from "../src/connection-store.ts"
import { keyId, parseKey } from "../src/secret-box.ts"
import { eventually, failure, newKey, newSecret, recorder, run, sleep } from "./services/connection-stores.ts"

export interface Database {
  readonly open: (keys?: ReadonlyArray<string>) => Promise<ConnectionStoreShape>
  readonly closeInstances: () => Promise<void>
}

export interface Backend {
  readonly name: string
  /** Instances opened on one database share it (false for memory: each open is a store of its own). */
  readonly durable: boolean
  /** A new, empty database for one test. `open` without keys uses the database's default key; `closeInstances`
   *  closes the instances opened so far and keeps the data. */
  readonly fresh: () => Promise<Database>
  /** Closes and drops what the test opened. */
  readonly cleanup: () => Promise<void>
}

const putInput = (name: string, over: Partial<PutInput> = {}, secret = "s3cr3t"): PutInput => ({
  name,
  provider: "oauth2",
  inputs: [
    { name: "token_url", value: "https://auth.example.com/token", secret: false },
    { name: "client_id", value: `id-${name}`, secret: false },
    { name: "client_secret", value: secret, secret: true }
  ],
  tags: { tenant: "acme" },
  ...over
})

const message = (id: string, endpoint: string) => ({ id, endpoint, body: JSON.stringify({ n: id }) })

/** Inputs with secrets unwrapped, for comparing. */
const plainInputs = (r: ConnectionRecord | undefined) =>
  Object.fromEntries([...(r?.inputs ?? [])].map(([k, v]) => [k, Redacted.isRedacted(v) ? Redacted.value(v) : v]))

const names = (items: ReadonlyArray<ConnectionRecord>) => items.map((r) => r.name)

const grant = (token: string, over: { scope?: string; detail?: string; status?: "active" | "needs_reauth" } = {}) => ({
  refreshToken: Redacted.make(token),
  status: over.status ?? ("active" as const),
  ...(over.scope === undefined ? {} : { scope: over.scope }),
  ...(over.detail === undefined ? {} : { detail: over.detail })
})

/** Every page of a listing, following `after` until `more` is false. */
const allPages = async (store: ConnectionStoreShape, tags: Record<string, string> | undefined, limit: number) => {
  const pages: string[][] = []
  let after: string | undefined
  for (;;) {
    const page = await run(store.list({ tags, after, limit }))
    pages.push(names(page.items))
    const last = page.items.at(-1)
    if (!page.more || !last) return pages
    after = last.name
  }
}

export const runConnectionStoreSuite = (backend: Backend) =>
  describe(`connection store contract: ${backend.name}`, () => {
    afterEach(() => backend.cleanup())
    const one = async () => (await backend.fresh()).open()

    it("creates a connection with version 1 and gives back its inputs, secrets wrapped in Redacted", async () => {
      const store = await one()
      const { created, record } = await run(store.put(putInput("crm", { allowInsecureHttp: true })))
      expect(created).toBe(true)
      expect(record.version).toBe(1)
      expect(record.createdAt).toBe(record.updatedAt)
      const got = await run(store.get("crm"))
      expect(got?.provider).toBe("oauth2")
      expect(got?.tags).toEqual({ tenant: "acme" })
      expect(got?.allowInsecureHttp).toBe(true)
      expect(got?.version).toBe(1)
      expect(got?.createdAt).toBe(record.createdAt)
      expect(Redacted.isRedacted(got?.inputs.get("client_secret"))).toBe(true)
      expect(got?.inputs.get("client_id")).toBe("id-crm")
      expect(plainInputs(got)).toEqual(plainInputs(record))
      expect(await run(store.get("nope"))).toBeUndefined()
      expect(await run(store.count())).toBe(1)
    })

    it("replaces a connection: keeps createdAt, bumps version, drops inputs and tags it no longer has", async () => {
      const store = await one()
      const first = (await run(store.put(putInput("crm", { tags: { tenant: "acme", tier: "gold" } })))).record
      await sleep(5)
      const { created, record } = await run(
        store.put({
          name: "crm",
          provider: "dvinci",
          inputs: [{ name: "base_url", value: "https://jobs.example.com", secret: false }],
          tags: { tenant: "beta" }
        })
      )
      expect(created).toBe(false)
      expect(record.version).toBe(2)
      expect(record.createdAt).toBe(first.createdAt)
      expect(record.updatedAt).toBeGreaterThan(first.updatedAt)
      const got = await run(store.get("crm"))
      expect(got?.provider).toBe("dvinci")
      expect(plainInputs(got)).toEqual({ base_url: "https://jobs.example.com" })
      expect(got?.allowInsecureHttp).toBe(false)
      expect(got?.version).toBe(2)
      expect((await run(store.list({ tags: { tier: "gold" }, limit: 10 }))).items).toEqual([])
      expect(names((await run(store.list({ tags: { tenant: "beta" }, limit: 10 }))).items)).toEqual(["crm"])
      expect(await run(store.count())).toBe(1)
    })

    it("deletes a connection with its grant; a grant without a stored connection stays", async () => {
      const store = await one()
      await run(store.put(putInput("crm")))
      expect(await run(store.putGrant("crm", grant("rt-1"), undefined))).toBe(true)
      expect(await run(store.putGrant("from-config", grant("rt-2"), undefined))).toBe(true)
      expect(await run(store.delete("crm"))).toBe(true)
      expect(await run(store.get("crm"))).toBeUndefined()
      expect(await run(store.getGrant("crm"))).toBeUndefined()
      expect(await run(store.delete("crm"))).toBe(false)
      expect(await run(store.delete("from-config"))).toBe(false)
      const kept = await run(store.getGrant("from-config"))
      expect(kept && Redacted.value(kept.refreshToken)).toBe("rt-2")
      expect(await run(store.count())).toBe(0)
      // A connection created again starts over.
      expect((await run(store.put(putInput("crm")))).record.version).toBe(1)
    })

    it("keeps a grant across a replacement that changes only tags, drops it when one points the connection elsewhere", async () => {
      const store = await one()
      const keep = async (over: Partial<PutInput>, secret?: string) => {
        await run(store.put(putInput("crm", over, secret)))
        return (await run(store.getGrant("crm"))) !== undefined
      }
      await run(store.put(putInput("crm")))
      expect(await run(store.putGrant("crm", grant("rt-1"), undefined))).toBe(true)
      expect(await keep({ tags: { tenant: "acme", tier: "gold" } })).toBe(true) // tags only
      expect(await keep({})).toBe(true) // the same PUT again
      const inputs = putInput("crm").inputs
      const retarget = inputs.map((i) => (i.name === "token_url" ? { ...i, value: "https://evil.example/token" } : i))
      expect(await keep({ inputs: retarget })).toBe(false) // another token endpoint: the refresh token stays home
      // Each change on its own drops a grant: a secret input, a new input, the provider, plain HTTP.
      const changes: ReadonlyArray<[Partial<PutInput>, string | undefined]> = [
        [{}, "another-secret"],
        [{ inputs: [...inputs, { name: "scope", value: "read", secret: false }] }, undefined],
        [{ provider: "cube" }, undefined],
        [{ allowInsecureHttp: true }, undefined]
      ]
      for (const [over, secret] of changes) {
        await run(store.put(putInput("crm")))
        expect(await run(store.putGrant("crm", grant("rt-2"), undefined))).toBe(true)
        expect(await keep(over, secret)).toBe(false)
      }
    })

    it("never lets a new connection inherit a grant left under its name", async () => {
      const store = await one()
      expect(await run(store.putGrant("was-in-config", grant("rt-old"), undefined))).toBe(true)
      await run(store.put(putInput("was-in-config")))
      expect(await run(store.getGrant("was-in-config"))).toBeUndefined()
    })

    it("lists in byte order, page by page, with `more` false on the last page", async () => {
      const store = await one()
      for (const n of ["b.c", "a", "Z", "0", "A1", "a-b", "a_b", "a.b"]) await run(store.put(putInput(n)))
      const expected = ["0", "A1", "Z", "a", "a-b", "a.b", "a_b", "b.c"]
      expect(await allPages(store, undefined, 3)).toEqual([
        expected.slice(0, 3),
        expected.slice(3, 6),
        expected.slice(6)
      ])
      expect(await allPages(store, undefined, 4)).toEqual([expected.slice(0, 4), expected.slice(4)])
      const all = await run(store.list({ limit: 8 }))
      expect(all.more).toBe(false)
      expect(names(all.items)).toEqual(expected)
      const after = await run(store.list({ after: "Z", limit: 100 }))
      expect(names(after.items)).toEqual(expected.slice(3))
      // A cursor need not be a stored name.
      expect(names((await run(store.list({ after: "a.", limit: 1 }))).items)).toEqual(["a.b"])
      expect((await run(store.list({ after: "b.c", limit: 5 }))).items).toEqual([])
    })

    it("filters on every given tag, exactly", async () => {
      const store = await one()
      await run(store.put(putInput("a1", { tags: { tenant: "acme", tier: "gold" } })))
      await run(store.put(putInput("a2", { tags: { tenant: "acme" } })))
      await run(store.put(putInput("a3", { tags: { tenant: "Acme", tier: "gold" } })))
      await run(store.put(putInput("a4", { tags: { tenant: "acme", tier: "gold", region: "eu" } })))
      await run(store.put(putInput("a5", { tags: {} })))
      const list = async (tags: Record<string, string>) => names((await run(store.list({ tags, limit: 100 }))).items)
      expect(await list({ tenant: "acme" })).toEqual(["a1", "a2", "a4"])
      expect(await list({ tenant: "acme", tier: "gold" })).toEqual(["a1", "a4"])
      expect(await list({ tier: "gold", tenant: "acme", region: "eu" })).toEqual(["a4"])
      expect(await list({ tenant: "acm" })).toEqual([])
      expect(await list({ tier: "" })).toEqual([])
      expect(await list({})).toEqual(["a1", "a2", "a3", "a4", "a5"])
      expect(await allPages(store, { tier: "gold" }, 1)).toEqual([["a1"], ["a3"], ["a4"]])
      const got = await run(store.get("a4"))
      expect(got?.tags).toEqual({ tenant: "acme", tier: "gold", region: "eu" })
    })

    it("keeps a grant, compared and set on its version", async () => {
      const store = await one()
      expect(await run(store.getGrant("crm"))).toBeUndefined()
      expect(await run(store.putGrant("crm", grant("rt-1", { scope: "read write" }), undefined))).toBe(true)
      const g1 = await run(store.getGrant("crm"))
      expect(g1 && Redacted.value(g1.refreshToken)).toBe("rt-1")
      expect(g1?.version).toBe(1)
      expect(g1?.scope).toBe("read write")
      expect(g1?.status).toBe("active")
      expect(g1?.detail).toBeUndefined()
      expect(await run(store.putGrant("crm", grant("rt-x"), undefined))).toBe(false)
      expect(await run(store.putGrant("crm", grant("rt-2"), 1))).toBe(true)
      expect(await run(store.putGrant("crm", grant("rt-y"), 1))).toBe(false)
      expect(await run(store.putGrant("other", grant("rt-z"), 1))).toBe(false)
      expect(await run(store.getGrant("other"))).toBeUndefined()
      expect(
        await run(store.putGrant("crm", grant("rt-3", { status: "needs_reauth", detail: "invalid_grant" }), 2))
      ).toBe(true)
      const g3 = await run(store.getGrant("crm"))
      expect(g3 && Redacted.value(g3.refreshToken)).toBe("rt-3")
      expect(g3?.version).toBe(3)
      expect(g3?.status).toBe("needs_reauth")
      expect(g3?.detail).toBe("invalid_grant")
      expect(g3?.scope).toBeUndefined()
      expect(String(g3?.refreshToken)).not.toContain("rt-3")
    })

    it("lets one of two writers rotating the same grant at once win", async () => {
      const db = await backend.fresh()
      const a = await db.open()
      const b = backend.durable ? await db.open() : a
      expect(await run(a.putGrant("crm", grant("rt-0"), undefined))).toBe(true)
      for (let round = 1; round <= 5; round++) {
        const [wa, wb] = await Promise.all([
          run(a.putGrant("crm", grant(`a-${round}`), round)),
          run(b.putGrant("crm", grant(`b-${round}`), round))
        ])
        expect([wa, wb].filter(Boolean)).toHaveLength(1)
        const g = await run(b.getGrant("crm"))
        expect(g?.version).toBe(round + 1)
        expect(g && Redacted.value(g.refreshToken)).toBe(wa ? `a-${round}` : `b-${round}`)
      }
      // Two first grants at once: one insert wins too.
      const [fa, fb] = await Promise.all([
        run(a.putGrant("new", grant("a"), undefined)),
        run(b.putGrant("new", grant("b"), undefined))
      ])
      expect([fa, fb].filter(Boolean)).toHaveLength(1)
    })

    it("tells a subscriber of its own writes once, and stops after unsubscribe", async () => {
      const store = await one()
      const r = recorder(store)
      const broken = store.subscribe(() => {
        throw new Error("a subscriber's bug")
      })
      await run(store.put(putInput("crm")))
      await run(store.put(putInput("crm")))
      expect(await run(store.delete("crm"))).toBe(true)
      expect(await run(store.delete("crm"))).toBe(false)
      const want = [
        { name: "crm", kind: "put", version: 1 },
        { name: "crm", kind: "put", version: 2 },
        { name: "crm", kind: "delete", version: 2 }
      ]
      expect(await eventually(() => r.seen.length >= 3, 1000)).toBe(true)
      await sleep(backend.durable ? 700 : 0) // long enough for a poll or a notification to repeat one
      expect(r.seen).toEqual(want)
      r.unsubscribe()
      broken()
      await run(store.put(putInput("crm")))
      await sleep(backend.durable ? 700 : 0)
      expect(r.seen).toEqual(want)
    })

    it("counts every connection and grant in reencrypt, rewriting none when all are under the first key", async () => {
      const store = await one()
      await run(store.put(putInput("a")))
      await run(store.put(putInput("b", { inputs: [] })))
      await run(store.putGrant("a", grant("rt"), undefined))
      expect(await run(store.reencrypt())).toEqual({ rewritten: 0, total: 3 })
      expect((await run(store.health())).status).toBe("ok")
    })

    it("takes 10k connections and lists them page by page with a tag filter", { timeout: 300_000 }, async () => {
      const store = await one()
      const n = 10_000
      const started = performance.now()
      await run(
        Effect.forEach(
          Array.from({ length: n }, (_, i) => i),
          (i) =>
            store.put(
              putInput(`tenant-${String(i).padStart(5, "0")}`, {
                tags: { tenant: `t${i % 10}`, ...(i % 3 === 0 ? { tier: "gold" } : {}) }
              })
            ),
          { concurrency: 16, discard: true }
        )
      )
      const seconds = (performance.now() - started) / 1000
      console.log(
        `PUT throughput (${backend.name}): ${n} connections in ${seconds.toFixed(2)} s = ${Math.round(n / seconds)}/s`
      )
      expect(await run(store.count())).toBe(n)
      const pages = await allPages(store, { tenant: "t3" }, 100)
      expect(pages).toHaveLength(10)
      const listed = pages.flat()
      expect(listed).toHaveLength(1000)
      expect(listed).toEqual([...listed].sort())
      expect(listed.every((name) => Number(name.slice(-5)) % 10 === 3)).toBe(true)
      const gold = (await allPages(store, { tenant: "t3", tier: "gold" }, 1000)).flat()
      expect(gold).toHaveLength(
        Array.from({ length: n }, (_, i) => i).filter((i) => i % 10 === 3 && i % 3 === 0).length
      )
      expect((await allPages(store, undefined, 1000)).flat()).toHaveLength(n)
    })

    it("outbox: adds once per id, claims what is due for the given endpoints, completes it", async () => {
      const store = await one()
      const box = store.outbox
      await run(box.add([message("msg_1", "ep-a"), message("msg_2", "ep-b"), message("msg_3", "ep-a")]))
      await run(box.add([{ ...message("msg_1", "ep-a"), body: '{"changed":true}' }]))
      expect(await run(box.stats())).toEqual({ pending: 3, dead: 0 })
      const claimed = await run(box.claim({ owner: "me", endpoints: ["ep-a"], limit: 10, leaseMs: 60_000 }))
      expect(claimed.map((m) => [m.id, m.endpoint, m.body, m.attempts])).toEqual([
        ["msg_1", "ep-a", '{"n":"msg_1"}', 0],
        ["msg_3", "ep-a", '{"n":"msg_3"}', 0]
      ])
      expect(claimed[0]!.createdAt).toBeGreaterThan(Date.now() - 60_000)
      // Claimed: nobody claims them again while the lease holds.
      expect(await run(box.claim({ owner: "other", endpoints: ["ep-a"], limit: 10, leaseMs: 60_000 }))).toEqual([])
      expect(await run(box.complete("msg_1", "other"))).toBe(false)
      expect(await run(box.complete("msg_1", "me"))).toBe(true)
      expect(await run(box.complete("msg_1", "me"))).toBe(false)
      expect(await run(box.stats())).toEqual({ pending: 2, dead: 0 })
      const limited = await run(box.claim({ owner: "me", endpoints: ["ep-a", "ep-b"], limit: 1, leaseMs: 60_000 }))
      expect(limited.map((m) => m.id)).toEqual(["msg_2"])
    })

    it("outbox: a failed attempt is counted and waits until it is due; a dead message is never claimed", async () => {
      const store = await one()
      const box = store.outbox
      await run(box.add([message("msg_r", "ep"), message("msg_d", "ep")]))
      const claim = (owner: string) => run(box.claim({ owner, endpoints: ["ep"], limit: 10, leaseMs: 60_000 }))
      expect((await claim("me")).map((m) => m.id)).toEqual(["msg_d", "msg_r"])
      expect(await run(box.retry("msg_r", "other", { nextAttemptAt: 0, error: "nope" }))).toBe(false)
      expect(await run(box.retry("msg_r", "me", { nextAttemptAt: Date.now() + 300, error: "HTTP 500" }))).toBe(true)
      expect(await run(box.retry("msg_d", "me", { nextAttemptAt: 0, error: "HTTP 410", dead: true }))).toBe(true)
      expect(await claim("me")).toEqual([])
      await sleep(350)
      const again = await claim("other")
      expect(again.map((m) => [m.id, m.attempts, m.lastError])).toEqual([["msg_r", 1, "HTTP 500"]])
      expect(await run(box.stats())).toEqual({ pending: 1, dead: 1 })
      expect(await run(box.prune(Date.now() + 1))).toBe(2)
      expect(await run(box.stats())).toEqual({ pending: 0, dead: 0 })
    })

    it("outbox: a claim whose lease ended is taken over, and its first owner can no longer complete it", async () => {
      const store = await one()
      const box = store.outbox
      await run(box.add([message("msg_l", "ep")]))
      expect(await run(box.claim({ owner: "dies", endpoints: ["ep"], limit: 10, leaseMs: 150 }))).toHaveLength(1)
      expect(await run(box.claim({ owner: "next", endpoints: ["ep"], limit: 10, leaseMs: 60_000 }))).toEqual([])
      await sleep(200)
      expect(
        (await run(box.claim({ owner: "next", endpoints: ["ep"], limit: 10, leaseMs: 60_000 }))).map((m) => m.id)
      ).toEqual(["msg_l"])
      expect(await run(box.complete("msg_l", "dies"))).toBe(false)
      expect(await run(box.complete("msg_l", "next"))).toBe(true)
    })

    if (!backend.durable) return

    it("outbox: instances claiming at once each get other messages, and a reopened store still has them", async () => {
      const db = await backend.fresh()
      const a = await db.open()
      const b = await db.open()
      const ids = Array.from({ length: 60 }, (_, i) => `msg_${String(i).padStart(2, "0")}`)
      await run(a.outbox.add(ids.map((id) => message(id, "ep"))))
      await db.closeInstances()
      const [x, y, z] = [await db.open(), await db.open(), await db.open()]
      const claims = await Promise.all(
        [x, y, z, x, y, z].map((s, i) =>
          run(s.outbox.claim({ owner: `owner-${i}`, endpoints: ["ep"], limit: 15, leaseMs: 60_000 }))
        )
      )
      const all = claims.flat().map((m) => m.id)
      expect(all).toHaveLength(60)
      expect(new Set(all).size).toBe(60)
      expect(b).toBeDefined()
    })

    it("keeps what it stored across a close and a reopen", async () => {
      const db = await backend.fresh()
      const key = newKey()
      const a = await db.open([key])
      const secret = newSecret("persist")
      await run(a.put(putInput("crm", {}, secret)))
      await run(a.putGrant("crm", grant("rt-keep"), undefined))
      await db.closeInstances()
      const b = await db.open([key])
      const got = await run(b.get("crm"))
      expect(plainInputs(got)["client_secret"]).toBe(secret)
      const g = await run(b.getGrant("crm"))
      expect(g && Redacted.value(g.refreshToken)).toBe("rt-keep")
    })

    it("keeps a grant's binding across a reopen and a key rotation; a grant written without one has none", async () => {
      const db = await backend.fresh()
      const [k1, k2] = [newKey(), newKey()]
      const a = await db.open([k1])
      await run(a.putGrant("crm", { ...grant("rt-bound"), binding: "b-1" }, undefined))
      await run(a.putGrant("legacy", grant("rt-legacy"), undefined))
      expect((await run(a.getGrant("crm")))?.binding).toBe("b-1")
      expect((await run(a.getGrant("legacy")))?.binding).toBeUndefined()
      if (!backend.durable) return
      await db.closeInstances()
      const both = await db.open([k2, k1])
      expect((await run(both.getGrant("crm")))?.binding).toBe("b-1")
      expect((await run(both.reencrypt())).rewritten).toBe(2)
      await db.closeInstances()
      const b = await db.open([k2])
      const g = await run(b.getGrant("crm"))
      expect(g && Redacted.value(g.refreshToken)).toBe("rt-bound")
      expect(g?.binding).toBe("b-1")
      expect((await run(b.getGrant("legacy")))?.binding).toBeUndefined()
      expect(await run(b.putGrant("legacy", { ...grant("rt-legacy"), binding: "b-2" }, 1))).toBe(true)
      expect((await run(b.getGrant("legacy")))?.binding).toBe("b-2")
    })

    it("tells a second instance's subscriber of a change through the first within 1 s, once", async () => {
      const db = await backend.fresh()
      const writer = await db.open()
      const reader = await db.open()
      const r = recorder(reader)
      const t0 = Date.now()
      await run(writer.put(putInput("crm")))
      expect(await eventually(() => r.seen.length >= 1, 1000)).toBe(true)
      const latency = Date.now() - t0
      expect(r.seen).toEqual([{ name: "crm", kind: "put", version: 1 }])
      await run(writer.delete("crm"))
      expect(await eventually(() => r.seen.length >= 2, 1000)).toBe(true)
      await sleep(600)
      expect(r.seen).toEqual([
        { name: "crm", kind: "put", version: 1 },
        { name: "crm", kind: "delete", version: 1 }
      ])
      expect(latency).toBeLessThan(1000)
    })

    it("tells a subscriber of its own writes and another instance's, interleaved, each once", async () => {
      const db = await backend.fresh()
      const other = await db.open()
      const self = await db.open()
      const r = recorder(self)
      await run(other.put(putInput("theirs-1")))
      await run(self.put(putInput("mine-1"))) // logged after a change it has not read yet
      expect(await eventually(() => r.seen.length >= 2, 1000)).toBe(true)
      await sleep(400)
      await run(self.put(putInput("mine-2"))) // logged right after everything it has read
      await run(other.put(putInput("theirs-2")))
      expect(await eventually(() => r.seen.length >= 4, 1000)).toBe(true)
      await sleep(600)
      expect([...r.seen].sort((a, b) => a.name.localeCompare(b.name))).toEqual(
        ["mine-1", "mine-2", "theirs-1", "theirs-2"].map((name) => ({ name, kind: "put", version: 1 }))
      )
    })

    it("rotates keys: reencrypt under the first, after which the old key can go and alone it cannot read", async () => {
      const db = await backend.fresh()
      const [k1, k2] = [newKey(), newKey()]
      const [kid1, kid2] = [keyId(parseKey(k1)!), keyId(parseKey(k2)!)]
      const secret = newSecret("rotate")
      const token = newSecret("refresh")
      const old = await db.open([k1])
      await run(old.put(putInput("crm", {}, secret)))
      await run(
        old.put(putInput("clear-only", { inputs: [{ name: "base_url", value: "https://x.example", secret: false }] }))
      )
      await run(old.putGrant("crm", grant(token), undefined))

      const both = await db.open([k2, k1])
      expect(plainInputs(await run(both.get("crm")))["client_secret"]).toBe(secret)
      expect(await run(both.reencrypt())).toEqual({ rewritten: 2, total: 3 })
      expect(await run(both.reencrypt())).toEqual({ rewritten: 0, total: 3 })
      const after = await run(both.get("crm"))
      expect(after?.version).toBe(1)
      expect((await run(both.getGrant("crm")))?.version).toBe(1)

      const onlyNew = await db.open([k2])
      expect(plainInputs(await run(onlyNew.get("crm")))["client_secret"]).toBe(secret)
      const g = await run(onlyNew.getGrant("crm"))
      expect(g && Redacted.value(g.refreshToken)).toBe(token)
      expect((await run(onlyNew.list({ limit: 10 }))).items).toHaveLength(2)

      const onlyOld = await db.open([k1])
      for (const e of [
        await failure(onlyOld.get("crm")),
        await failure(onlyOld.list({ limit: 10 })),
        await failure(onlyOld.reencrypt()),
        await failure(onlyOld.getGrant("crm"))
      ]) {
        expect(e).toBeInstanceOf(ConnectionStoreError)
        expect(e.connection).toBe("crm")
        expect(e.message).toContain(kid2)
        expect(e.message).toContain(kid1)
        expect(e.message).toContain("connection_store.encryption_keys")
        for (const s of [secret, token, k1, k2]) expect(JSON.stringify(e) + e.message).not.toContain(s)
      }
      // Rows without secrets stay readable.
      expect((await run(onlyOld.get("clear-only")))?.provider).toBe("oauth2")
    })

    it("reencrypts while another instance writes, without losing a write or changing a version", async () => {
      const db = await backend.fresh()
      const [k1, k2] = [newKey(), newKey()]
      const old = await db.open([k1])
      for (let i = 0; i < 300; i++) await run(old.put(putInput(`c${String(i).padStart(3, "0")}`, {}, `v0-${i}`)))
      const rotating = await db.open([k2, k1])
      const writer = await db.open([k1])
      const [result] = await Promise.all([
        run(rotating.reencrypt()),
        run(
          Effect.forEach(
            Array.from({ length: 100 }, (_, i) => i * 3),
            (i) => writer.put(putInput(`c${String(i).padStart(3, "0")}`, {}, `v1-${i}`)),
            { concurrency: 4, discard: true }
          )
        )
      ])
      expect(result.total).toBe(300)
      // Rows the writer sealed under K1 after the pass saw them: a second pass rewrites them.
      await run(rotating.reencrypt())
      const check = await db.open([k2])
      for (let i = 0; i < 300; i++) {
        const r = await run(check.get(`c${String(i).padStart(3, "0")}`))
        const written = i % 3 === 0
        expect(plainInputs(r)["client_secret"]).toBe(written ? `v1-${i}` : `v0-${i}`)
        expect(r?.version).toBe(written ? 2 : 1)
      }
    })

    it("refuses a key that is not 32 bytes, naming the setting and not the value", async () => {
      const db = await backend.fresh()
      const bad = "not-a-key-but-maybe-a-password"
      const e = await db.open([newKey(), bad]).then(
        () => undefined,
        (err: unknown) => err
      )
      expect(e).toBeInstanceOf(ConnectionStoreError)
      const msg = e instanceof Error ? e.message : ""
      expect(msg).toContain("connection_store.encryption_keys[1]")
      expect(msg).toContain("openssl rand -base64 32")
      expect(msg).not.toContain(bad)
    })
  })
