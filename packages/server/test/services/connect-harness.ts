/** Test harness for the connect flow: a config with connect keys and API keys of every kind the tests need, a
 *  server whose `server.public_url` is its own address (set by a reload once the port is known), and helpers that
 *  seal links and states with the test's key and present the browser-binding cookie. */
import { Effect, Redacted } from "effect"
import { createHash, randomBytes } from "node:crypto"
import { Config, SecretBox } from "@tessera/engine"
import type { RunningServer, ServerOptions } from "../../src/index.ts"
import * as Seal from "../../src/connect-seal.ts"
import { start, type Captured } from "./harness.ts"

export const CONNECT_KEY = randomBytes(32).toString("base64")
export const ADMIN = "connect-admin-key-4c1d9e7b2a6f"
export const ACME = "connect-acme-key-8e2b5d1c7f3a"
export const GLOBEX = "connect-globex-key-3f9a6c2e1b7d"
export const READER = "connect-reader-key-1a2b3c4d5e6f"
export const ONLY_OTHER = "connect-other-key-9d8c7b6a5f4e"

export const env = { CONNECT_KEY }

export const ring: SecretBox.KeyRing = Seal.ringOf([Redacted.make(CONNECT_KEY)])!

/** The `server:` block's lines; `publicUrl` undefined leaves it out. The tenants' keys write connections pointing at
 *  the 127.0.0.1 sandboxes, so `tenant_private_targets` is on unless `privateTargets: false`. */
export const serverLines = (
  publicUrl: string | undefined,
  opts: { connectKeys?: boolean; allowlisted?: boolean; privateTargets?: boolean } = {}
): string[] => [
  "server:",
  ...((opts.privateTargets ?? true) ? ["  tenant_private_targets: true"] : []),
  ...(publicUrl !== undefined ? [`  public_url: "${publicUrl}"`] : []),
  ...((opts.connectKeys ?? true) ? ['  connect_keys: ["${env:CONNECT_KEY}"]'] : []),
  "  api_keys:",
  `    - { name: admin, key: "${ADMIN}", scopes: [token, proxy, "connections:read", "connections:write"] }`,
  `    - { name: acme, key: "${ACME}", tags: { tenant: acme }, scopes: ["connections:read", "connections:write"] }`,
  `    - { name: globex, key: "${GLOBEX}", tags: { tenant: globex }, scopes: ["connections:read", "connections:write"] }`,
  `    - { name: reader, key: "${READER}", scopes: ["connections:read", token] }`,
  ...((opts.allowlisted ?? true)
    ? [`    - { name: only-other, key: "${ONLY_OTHER}", connections: [other], scopes: ["connections:write"] }`]
    : [])
]

export const parse = (text: string, file = "/tmp/tessera-connect-test/tessera.yaml"): Promise<Config.Config> =>
  Effect.runPromise(Config.parse(file, text, env))

/** Starts a server for `text(publicUrl)`, then reloads it with its own address as public_url. */
export const startWithPublicUrl = async (
  text: (publicUrl: string | undefined) => string,
  captured: Captured,
  options: ServerOptions = {}
): Promise<RunningServer> => {
  const s = await start(await parse(text(undefined)), captured, options)
  await s.reload(await parse(text(s.url)))
  return s
}

export const nowSeconds = () => Math.floor(Date.now() / 1000)

export const sealLink = (link: Seal.Link) => Seal.sealLink(ring, link)

/** A state as the server would seal it, and the cookie that binds it to "this browser". */
export const sealState = (over: Partial<Seal.State> & { c: string }) => {
  const browser = randomBytes(24).toString("base64url")
  const id = randomBytes(9).toString("base64url")
  const state: Seal.State = {
    id,
    cv: 0,
    gv: null,
    exp: nowSeconds() + 600,
    pv: randomBytes(32).toString("base64url"),
    bh: createHash("sha256").update(browser).digest("base64url"),
    ...over
  }
  return { text: Seal.sealState(ring, state), cookie: `tessera_connect_${id}=${browser}`, state }
}

/** The stable outcome code a result page shows (`data-code`). */
export const pageCode = (html: string): string | undefined => /data-code="([^"]*)"/.exec(html)?.[1]

/** A sealed value with one character of its ciphertext changed: a middle one, whose bits all count (the last
 *  character of unpadded base64url may carry unused bits, so changing it can decode to the same bytes). */
export const altered = (sealed: string): string => {
  const parts = sealed.split(".")
  const ct = parts[3]!
  const i = Math.floor(ct.length / 2)
  parts[3] = ct.slice(0, i) + (ct[i] === "A" ? "B" : "A") + ct.slice(i + 1)
  return parts.join(".")
}
