/** A key limited to some connections by name (`connections: [a-mine]`) lists only those, and its pages' cursors
 *  never name another: before, the list hid the others' items but paged over every connection, so walking it with
 *  `limit=1` read each hidden name from `next_cursor` (base64url of `n:<name>`), config and stored alike, which
 *  the routes themselves do not tell (403 for any name outside the list, existing or not). The status page's rows
 *  page the same way. */
import type { Sandbox } from "@tessera/testkit"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningServer } from "../src/index.ts"
import { capture, parseConfig, raw, sandbox, start } from "./services/harness.ts"

const ADMIN = "allow-admin-key-4c1d9e7b2a6f"
const LIMITED = "allow-limited-key-8e2b5d1c7f3a"

let sb: Sandbox
let s: RunningServer
const captured = capture()

beforeAll(async () => {
  sb = await sandbox()
  const connection = (name: string) => [
    `  ${name}:`,
    "    provider: dvinci",
    "    inputs:",
    ...Object.entries(sb.credentials.dvinci).map(([k, v]) => `      ${k}: ${JSON.stringify(v)}`)
  ]
  const text = [
    "connections:",
    ...connection("a-mine"),
    ...connection("b-secret-project"),
    ...connection("e-mine-too"),
    "server:",
    "  api_keys:",
    `    - { name: admin, key: "${ADMIN}", scopes: ["connections:read", "connections:write"] }`,
    `    - { name: limited, key: "${LIMITED}", connections: [a-mine, e-mine-too], scopes: ["connections:read"] }`
  ].join("\n")
  s = await start(await parseConfig(text), captured, { connections: "memory" })
  for (const name of ["c-stored", "d-stored"]) {
    const put = await raw(s.url, `/v1/connections/${name}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify({ provider: "dvinci", inputs: sb.credentials.dvinci })
    })
    expect(put.status).toBe(201)
  }
})
afterAll(async () => {
  await s?.close()
  await sb?.close()
})

/** Every page of `path` for the limited key, one item at a time: the names shown and the names cursors carry. */
const walk = async (path: string) => {
  const shown: string[] = []
  const cursors: string[] = []
  let cursor: string | null = null
  for (let i = 0; i < 10; i++) {
    const r = await raw(s.url, `${path}?limit=1${cursor === null ? "" : `&cursor=${cursor}`}`, {
      headers: { authorization: `Bearer ${LIMITED}` }
    })
    expect(r.status, r.text).toBe(200)
    const page = r.json()
    shown.push(...page.items.map((v: { name: string }) => v.name))
    cursor = page.next_cursor
    if (cursor === null) return { shown, cursors }
    cursors.push(Buffer.from(cursor, "base64url").toString("utf8"))
  }
  throw new Error("more pages than connections")
}

describe("a key with an allowlist of names", () => {
  it("GET /v1/connections: only its names, full pages, and no cursor naming another", async () => {
    const { shown, cursors } = await walk("/v1/connections")
    expect(shown).toEqual(["a-mine", "e-mine-too"])
    expect(cursors).toEqual(["n:a-mine"])
  })

  it("the status page's rows (GET /ui/status) page the same way", async () => {
    const { shown, cursors } = await walk("/ui/status")
    expect(shown).toEqual(["a-mine", "e-mine-too"])
    expect(cursors).toEqual(["n:a-mine"])
  })

  it("a key for every name still pages over all of them", async () => {
    const r = await raw(s.url, "/v1/connections?limit=100", { headers: { authorization: `Bearer ${ADMIN}` } })
    expect(r.json().items.map((v: { name: string }) => v.name)).toEqual([
      "a-mine",
      "b-secret-project",
      "c-stored",
      "d-stored",
      "e-mine-too"
    ])
  })
})
