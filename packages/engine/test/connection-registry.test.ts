/** The connection registry: config and stored connections side by side, validation with every problem located,
 *  paging in a stable order, and a replaced connection never served its old token. */
import { Effect, Redacted } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import * as ConnectionStore from "../src/connection-store.ts"
import * as Engine from "../src/engine.ts"
import * as Http from "../src/http.ts"
import * as Registry from "../src/connection-registry.ts"
import { makeMemory } from "../src/token-store.ts"
import { makeHarness, type Harness } from "./services/harness.ts"

let h: Harness | undefined
afterEach(async () => {
  await h?.close()
  h = undefined
})

const withStore = async () => {
  h = await makeHarness()
  const connections = ConnectionStore.makeMemory()
  const engine = Effect.runSync(
    Engine.make(h.config, makeMemory(), { connectionStore: Effect.succeed(connections) }).pipe(
      Effect.provide(Http.layer)
    )
  )
  return { h, engine, connections, reg: engine.registry }
}

describe("validation", () => {
  it("reports every problem at once with a JSON pointer, and stores nothing", async () => {
    const { h, reg, connections } = await withStore()
    const e = await h.fail(
      reg.put("acme-jobs", {
        provider: "dvinci",
        inputs: { base_url: "http://jobs.example.com", client_secret: "s3cret-value", colour: "blue" },
        tags: { "bad tag": "x" },
        extra: 1
      })
    )
    expect(e._tag).toBe("ConnectionInvalid")
    if (e._tag !== "ConnectionInvalid") return
    // The shape is checked first: an unknown field alone.
    expect(e.errors).toEqual([{ path: "/extra", message: expect.stringMatching(/unknown field/) }])
    const e2 = await h.fail(
      reg.put("acme-jobs", {
        provider: "dvinci",
        inputs: { base_url: "http://jobs.example.com", client_secret: "s3cret-value", colour: "blue" },
        tags: { "bad tag": "x" }
      })
    )
    if (e2._tag !== "ConnectionInvalid") throw new Error(e2._tag)
    const paths = e2.errors.map((x) => x.path).sort()
    expect(paths).toEqual(["/inputs/base_url", "/inputs/client_id", "/inputs/colour", "/tags/bad tag"])
    expect(e2.errors.find((x) => x.path === "/inputs/base_url")?.message).toMatch(/plain http/)
    expect(e2.errors.find((x) => x.path === "/inputs/client_id")?.message).toMatch(/missing required input/)
    expect(JSON.stringify(e2)).not.toContain("s3cret-value")
    expect(await h.run(connections.count())).toBe(0)
  })

  it("an unknown provider gets a did-you-mean; a name from the config file is a conflict", async () => {
    const { h, reg } = await withStore()
    const e = await h.fail(reg.put("x", { provider: "dvinchi", inputs: {} }))
    if (e._tag !== "ConnectionInvalid") throw new Error(e._tag)
    expect(e.errors).toEqual([{ path: "/provider", message: expect.stringContaining('did you mean "dvinci"') }])
    const c = await h.fail(reg.put("cube", { provider: "cube", inputs: {} }))
    expect(c._tag).toBe("ConnectionConflict")
    expect((await h.fail(reg.remove("cube")))._tag).toBe("ConnectionConflict")
  })

  it("inputs are taken literally: ${env:...} is never resolved for a caller", async () => {
    const { h, reg } = await withStore()
    process.env["TESSERA_TEST_LEAK"] = "do-not-read-me"
    const put = await h.run(
      reg.put("t1", {
        provider: "dvinci",
        inputs: { base_url: h.sb.url, client_id: "${env:TESSERA_TEST_LEAK}", client_secret: "x1234" }
      })
    )
    delete process.env["TESSERA_TEST_LEAK"]
    expect(put.view.inputs["client_id"]).toBe("${env:TESSERA_TEST_LEAK}")
    expect(put.view.inputs["client_secret"]).toBe("***")
  })

  it("a key's tag selector must be carried by what it writes", async () => {
    const { h, reg } = await withStore()
    const body = { provider: "dvinci", inputs: { base_url: h.sb.url, client_id: "u", client_secret: "p-1234" } }
    const e = await h.fail(reg.put("t1", { ...body, tags: { tenant: "other" } }, { requiredTags: { tenant: "acme" } }))
    if (e._tag !== "ConnectionInvalid") throw new Error(e._tag)
    expect(e.errors).toEqual([{ path: "/tags/tenant", message: expect.stringMatching(/tenant: acme/) }])
    const ok = await h.run(reg.put("t1", { ...body, tags: { tenant: "acme" } }, { requiredTags: { tenant: "acme" } }))
    expect(ok.created).toBe(true)
  })
})

describe("tokens of stored connections", () => {
  it("a stored connection gets tokens like a config one; replacing it forgets the old token", async () => {
    const { h, engine, reg } = await withStore()
    const creds = h.sb.credentials.dvinci
    await h.run(reg.put("acme", { provider: "dvinci", inputs: { ...creds }, tags: { tenant: "acme" } }))
    const first = await h.run(engine.getToken("acme"))
    expect(first.decision.action).toBe("acquired")
    expect(engine.peek("acme")?.accessToken).toBe(first.accessToken)
    const replaced = await h.run(
      reg.put("acme", { provider: "dvinci", inputs: { ...creds }, tags: { tenant: "acme" } })
    )
    expect(replaced.created).toBe(false)
    expect(engine.peek("acme")).toBeUndefined()
    const second = await h.run(engine.getToken("acme"))
    expect(second.decision.action).toBe("acquired")
    expect(Redacted.value(second.accessToken)).not.toBe(Redacted.value(first.accessToken))
    expect(h.sb.tokenRequests("dvinci")).toHaveLength(2)
  })

  it("a change reported by the store (another instance) evicts the resolved connection and its token", async () => {
    const { h, engine, reg, connections } = await withStore()
    await h.run(reg.put("acme", { provider: "dvinci", inputs: { ...h.sb.credentials.dvinci } }))
    await h.run(engine.getToken("acme"))
    // Another instance deletes it: this store reports the change to its subscribers.
    await h.run(connections.delete("acme"))
    expect(engine.peek("acme")).toBeUndefined()
    expect((await h.fail(engine.getToken("acme")))._tag).toBe("UnknownConnection")
  })

  it("a stored connection the manifest no longer accepts is misconfigured, not a crash", async () => {
    const { h, engine, reg, connections } = await withStore()
    await h.run(
      connections.put({
        name: "old",
        provider: "dvinci",
        inputs: [{ name: "nope", value: "1", secret: false }],
        tags: {}
      })
    )
    expect((await h.fail(engine.getToken("old")))._tag).toBe("InputInvalid")
    expect((await h.run(reg.view("old")))?.status).toBe("misconfigured")
  })
})

describe("list", () => {
  it("merges config and stored connections in name order, pages with a cursor, filters by tags", async () => {
    const { h, reg } = await withStore()
    const creds = h.sb.credentials.dvinci
    for (const n of ["b1", "a1", "zz", "cube0"])
      await h.run(reg.put(n, { provider: "dvinci", inputs: { ...creds }, tags: { tenant: n === "zz" ? "z" : "acme" } }))
    const names: string[] = []
    let cursor: string | undefined
    for (let i = 0; i < 20; i++) {
      const page: Registry.ListPage = await h.run(reg.list({ limit: 3, cursor }))
      names.push(...page.items.map((x) => x.name))
      if (page.next_cursor === null) break
      cursor = page.next_cursor
    }
    const expected = ["a1", "b1", "brandbox", "crm-com", "cube", "cube0", "dvinci", "oauth2", "usage-engine", "zz"]
    expect(names).toEqual(expected)
    const acme = await h.run(reg.list({ tags: { tenant: "acme" } }))
    expect(acme.items.map((x) => x.name)).toEqual(["a1", "b1", "cube0"])
    expect(acme.next_cursor).toBeNull()
    expect((await h.fail(reg.list({ cursor: "not a cursor" })))._tag).toBe("ConnectionInvalid")
    expect((await h.fail(reg.list({ limit: 0 })))._tag).toBe("ConnectionInvalid")
  })

  it("without a connection store only the config's connections exist, and writes say how to add one", async () => {
    h = await makeHarness()
    const engine = Effect.runSync(Engine.make(h.config, makeMemory()).pipe(Effect.provide(Http.layer)))
    expect((await h.run(engine.registry.list())).items).toHaveLength(6)
    const e = await h.fail(engine.registry.put("x", { provider: "cube", inputs: {} }))
    expect(e._tag).toBe("ConnectionStoreError")
    expect(e.message).toMatch(/connection_store/)
  })
})
