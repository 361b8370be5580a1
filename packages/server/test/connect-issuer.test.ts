/** The connect callback and RFC 9207: a connection that discovers its issuer (the testkit grant server's RFC 8414
 *  metadata, which promises `iss`) takes only a callback whose `iss` is that issuer. Another issuer's callback (a
 *  mix-up: the code came from elsewhere) is a 502 ExchangeFailed page naming it, and its code goes nowhere. */
import { startGrantServer, client, type GrantServer } from "@tessera/testkit/grant-server"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningServer } from "../src/index.ts"
import { ACME, pageCode, serverLines, startWithPublicUrl } from "./services/connect-harness.ts"
import { capture, keyed, raw } from "./services/harness.ts"

let gs: GrantServer
let server: RunningServer
const captured = capture()

const text = (publicUrl: string | undefined) =>
  [
    "connection_store: { type: memory }",
    "connections:",
    "  crm:",
    "    provider: oauth2",
    "    tags: { tenant: acme }",
    `    inputs: { issuer: "${gs.origin}", client_id: ${client.id}, client_secret: ${client.secret}, grant_type: authorization_code, scope: read }`,
    ...serverLines(publicUrl, { allowlisted: false })
  ].join("\n")

beforeAll(async () => {
  gs = await startGrantServer({ issParameter: true })
  server = await startWithPublicUrl(text, captured)
})
afterAll(async () => {
  await server?.close()
  await gs?.close()
})

/** The link, the browser's trip to the provider and back: the callback URL and the binding cookie. */
const toCallback = async () => {
  const link = await keyed(server.url, ACME, "POST", "/v1/connect-links", { connection: "crm" }, captured)
  expect(link.status).toBe(201)
  const u = new URL(link.json().url)
  const nav = { "sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document" }
  const toProvider = await raw(server.url, u.pathname + u.search, { headers: nav })
  expect(toProvider.status).toBe(302)
  const back = await fetch(String(toProvider.headers.location), { redirect: "manual" })
  const callback = new URL(back.headers.get("location")!)
  const cookie = String(toProvider.headers["set-cookie"]).split(";")[0]!
  return () => raw(server.url, callback.pathname + callback.search, { headers: { ...nav, cookie } })
}

const codeRequests = () =>
  gs.requests.filter((r) => r.path === "/token" && r.form["grant_type"] === "authorization_code")

describe("the connect callback checks the authorization response's issuer (RFC 9207)", () => {
  it("another issuer's callback is a 502 ExchangeFailed page naming it; the code is sent nowhere", async () => {
    gs.iss = "https://as.attacker.example"
    const page = await (await toCallback())()
    expect(page.status).toBe(502)
    expect(pageCode(page.text)).toBe("ExchangeFailed")
    expect(page.text).toContain("as.attacker.example")
    expect(codeRequests()).toHaveLength(0)
  })

  it("a callback without iss, which the issuer's metadata promises, is refused the same way", async () => {
    gs.iss = undefined
    const page = await (await toCallback())()
    expect(page.status).toBe(502)
    expect(pageCode(page.text)).toBe("ExchangeFailed")
    expect(codeRequests()).toHaveLength(0)
  })

  it("the issuer's own callback connects", async () => {
    gs.iss = gs.origin
    const page = await (await toCallback())()
    expect(page.status).toBe(200)
    expect(pageCode(page.text)).toBe("Connected")
    expect(codeRequests()).toHaveLength(1)
  })
})
