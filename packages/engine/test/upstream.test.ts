/** Upstream.exchange's errors name the token endpoint, never a secret in it: a manifest that puts a secret input
 *  into the token URL's path gets it masked in TransportError and UpstreamTimeout messages. */
import { Effect } from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import * as Config from "../src/config.ts"
import * as Engine from "../src/engine.ts"
import * as Http from "../src/http.ts"
import { makeMemory } from "../src/token-store.ts"

const dir = mkdtempSync(join(tmpdir(), "tessera-upstream-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const closedPort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port
      s.close(() => resolve(p))
    })
  })

describe("a secret in the token URL", () => {
  it("is masked in the error that names the endpoint", async () => {
    const port = await closedPort()
    writeFileSync(
      join(dir, "keyed.yaml"),
      [
        "id: keyed",
        "name: Keyed",
        "inputs: { key: { secret: true } }",
        "flows:",
        "  acquire:",
        `    url: "http://127.0.0.1:${port}/t/{{ inputs.key }}/token"`,
        "    grant_type: client_credentials",
        "    client_auth: { method: none }"
      ].join("\n")
    )
    const key = "url-path-secret-7781"
    const config = await Effect.runPromise(
      Config.fromObject(
        { providers: [dir], connections: { k: { provider: "keyed", inputs: { key: "${env:KEY}" } } } },
        {
          KEY: key
        }
      )
    )
    const engine = Effect.runSync(
      Engine.make(config, makeMemory(), {
        http: { timeoutMs: 500, totalTimeoutMs: 1000, retries: 0, maxResponseBytes: 1024 }
      }).pipe(Effect.provide(Http.layer))
    )
    const e = await Effect.runPromise(Effect.flip(engine.getToken("k")))
    expect(e._tag).toBe("TransportError")
    expect(e.message).toContain(`http://127.0.0.1:${port}/t/***/token`)
    expect(JSON.stringify(e)).not.toContain(key)
  })
})
