/** `tessera login`: the authorization code flow over a loopback redirect (random port, or the manifest's fixed one),
 *  --no-browser, $BROWSER, denied consent, a state mismatch and the timeout, and --device; each against the
 *  loopback grant server (@tessera/testkit/grant-server), with the grant landing in the default SQLite store and
 *  later `tessera token` calls renewing from it. */
import { client, oauth2Inputs, startGrantServer, type GrantServer } from "@tessera/testkit/grant-server"
import { readFileSync } from "node:fs"
import { createServer } from "node:net"
import { join } from "node:path"
import { afterAll, afterEach, describe, expect, it } from "vitest"
import { cleanup, repoProviders, tempDir, tessera, tesseraLive, write } from "./services/cli.ts"

let gs: GrantServer | undefined
afterEach(async () => {
  await gs?.close()
  gs = undefined
})
afterAll(() => cleanup())

const configFor = (s: GrantServer, more: Record<string, string> = {}, provider = "oauth2") => {
  const cwd = tempDir()
  const inputs = oauth2Inputs(s, { client_secret: "${env:APP_SECRET}", scope: "read", ...more })
  write(
    join(cwd, "tessera.yaml"),
    `connections:\n  app:\n    provider: ${provider}\n    inputs:\n${Object.entries(inputs)
      .map(([k, v]) => `      ${k}: ${JSON.stringify(v)}`)
      .join("\n")}\n`
  )
  return cwd
}
const env = { APP_SECRET: client.secret }

/** What a browser does with the authorization URL here: the grant server redirects to the callback at once. */
const browse = async (url: string) => {
  const auth = await fetch(url, { redirect: "manual" })
  const callback = auth.headers.get("location")!
  const page = await fetch(callback)
  return { callback: new URL(callback), status: page.status, html: await page.text() }
}

const urlLine = /\n(http:\/\/127\.0\.0\.1:\d+\/authorize\?\S+)\n/

describe("tessera login", () => {
  it("--help describes the flows and flags", async () => {
    const r = await tessera(["login", "--help"], { cwd: tempDir() })
    expect(r.code).toBe(0)
    for (const s of ["--no-browser", "--device", "--timeout", "127.0.0.1", "RFC 8252", "needs_reauth"])
      expect(r.stdout).toContain(s)
  })

  it("--no-browser: prints the URL, takes the loopback redirect, exchanges the code and stores the grant", async () => {
    gs = await startGrantServer()
    const cwd = configFor(gs)
    const live = tesseraLive(["login", "app", "--no-browser"], { cwd, env })
    const [, url] = await live.waitFor(urlLine)
    const u = new URL(url!)
    const redirect = new URL(u.searchParams.get("redirect_uri")!)
    expect(redirect.hostname).toBe("127.0.0.1")
    expect(redirect.pathname).toBe("/callback")
    expect(Number(redirect.port)).toBeGreaterThan(0)
    expect(u.searchParams.get("code_challenge_method")).toBe("S256")
    const page = await browse(url!)
    expect(page.status).toBe(200)
    expect(page.html).toContain("app is authorized")
    const r = await live.done
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(
      /^authorized app \(oauth2\): grant stored in sqlite .*connections\.db; access token valid until /
    )
    const [exchange] = gs.requests.filter((x) => x.path === "/token")
    expect(exchange!.headers["authorization"]).toBe(
      `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString("base64")}`
    )
    expect(Object.keys(exchange!.form)).toEqual(["grant_type", "code", "redirect_uri", "code_verifier"])
    expect(exchange!.form).toMatchObject({
      grant_type: "authorization_code",
      code: page.callback.searchParams.get("code"),
      redirect_uri: redirect.toString()
    })
    // Nothing secret on the terminal.
    for (const s of [exchange!.form["code"]!, exchange!.form["code_verifier"]!, ...gs.live()])
      expect(r.stdout + r.stderr).not.toContain(s)
    // The grant is in the connection store: a forced renewal redeems it, and `connections show` tells.
    const token = await tessera(["token", "app", "--force"], { cwd, env })
    expect(token.code, token.stderr).toBe(0)
    expect(gs.requests.filter((x) => x.form["grant_type"] === "refresh_token")).toHaveLength(1)
    const show = await tessera(["connections", "show", "app"], { cwd, env })
    expect(show.stdout).toMatch(/grant: {5}active \(updated /)
  })

  it("opens $BROWSER on the authorization URL", async () => {
    gs = await startGrantServer()
    const cwd = configFor(gs)
    const seen = join(cwd, "browser-saw")
    const browser = write(join(cwd, "browser.sh"), `#!/bin/sh\nprintf '%s' "$1" > '${seen}'\n`)
    const { chmodSync, existsSync } = await import("node:fs")
    chmodSync(browser, 0o755)
    const live = tesseraLive(["login", "app"], { cwd, env: { ...env, BROWSER: browser } })
    await live.waitFor(/Opening the browser/)
    for (let i = 0; i < 200 && !existsSync(seen); i++) await new Promise((r) => setTimeout(r, 25))
    const url = readFileSync(seen, "utf8")
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/authorize\?response_type=code&/)
    await browse(url)
    expect((await live.done).code).toBe(0)
  })

  it("uses the manifest's redirect_port", async () => {
    gs = await startGrantServer()
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port
        s.close(() => resolve(p))
      })
    })
    const cwd = configFor(gs, {}, "fixed-port")
    const manifest = readFileSync(join(repoProviders, "oauth2.yaml"), "utf8")
      .replace("id: oauth2", "id: fixed-port")
      .replace("\nauthorization:\n", `\nauthorization:\n  redirect_port: ${port}\n`)
    expect(manifest).toContain(`redirect_port: ${port}`)
    write(join(cwd, "providers", "fixed-port.yaml"), manifest)
    write(join(cwd, "tessera.yaml"), `providers: [./providers]\n${readFileSync(join(cwd, "tessera.yaml"), "utf8")}`)
    const live = tesseraLive(["login", "app", "--no-browser"], { cwd, env })
    const [, url] = await live.waitFor(urlLine)
    expect(new URL(url!).searchParams.get("redirect_uri")).toBe(`http://127.0.0.1:${port}/callback`)
    await browse(url!)
    const r = await live.done
    expect(r.code, r.stderr).toBe(0)
  })

  it("says so when the user declines, when the state does not match, and when nobody answers in time", async () => {
    gs = await startGrantServer()
    const cwd = configFor(gs)
    gs.deny = true
    const denied = tesseraLive(["login", "app", "--no-browser"], { cwd, env })
    const page = await browse((await denied.waitFor(urlLine))[1]!)
    expect(page.status).toBe(400)
    expect(page.html).toContain("the user declined")
    const d = await denied.done
    expect(d.code).toBe(1)
    expect(d.stderr).toContain("tessera: app (oauth2): the user declined the authorization: access_denied")

    const forged = tesseraLive(["login", "app", "--no-browser"], { cwd, env })
    const u = new URL((await forged.waitFor(urlLine))[1]!)
    const callback = new URL(u.searchParams.get("redirect_uri")!)
    callback.search = "code=attacker-code&state=guessed"
    expect((await fetch(callback)).status).toBe(400)
    const f = await forged.done
    expect(f.code).toBe(1)
    expect(f.stderr).toContain("the callback's state does not match this authorization request")

    const slow = await tessera(["login", "app", "--no-browser", "--timeout", "1"], { cwd, env })
    expect(slow.code).toBe(1)
    expect(slow.stderr).toContain("no answer within 1 s (--timeout)")
    expect(gs.requests.filter((x) => x.path === "/token")).toHaveLength(0)
  })

  it("--device prints the verification URI and user code, polls, and stores the grant", async () => {
    gs = await startGrantServer({ interval: 1 })
    const cwd = configFor(gs, { grant_type: "urn:ietf:params:oauth:grant-type:device_code" })
    const live = tesseraLive(["login", "app", "--device"], { cwd, env })
    const [, uri, code] = await live.waitFor(/open (\S+) and enter the code: ([0-9A-F]{8})\n/)
    expect(uri).toBe(`${gs.origin}/activate`)
    await live.waitFor(new RegExp(`\\(or open ${gs.origin}/activate\\?user_code=${code}\\)`))
    gs.approve(code!)
    const r = await live.done
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain("authorized app (oauth2): grant stored in sqlite")
    const polls = gs.requests.filter((x) => x.path === "/token")
    expect(polls[0]!.form["grant_type"]).toBe("urn:ietf:params:oauth:grant-type:device_code")
    const token = await tessera(["token", "app", "--force"], { cwd, env })
    expect(token.code, token.stderr).toBe(0)
  })

  it("a connection whose grant was refused is needs_reauth in `connections show`, and `token` says to log in", async () => {
    gs = await startGrantServer()
    const cwd = configFor(gs)
    const live = tesseraLive(["login", "app", "--no-browser"], { cwd, env })
    await browse((await live.waitFor(urlLine))[1]!)
    expect((await live.done).code).toBe(0)
    for (const rt of gs.live()) gs.revoke(rt)
    const token = await tessera(["token", "app", "--force"], { cwd, env })
    expect(token.code).toBe(1)
    expect(token.stderr).toContain("needs the user to authorize again")
    expect(token.stderr).toContain("tessera login app")
    const show = await tessera(["connections", "show", "app"], { cwd, env })
    expect(show.stdout).toContain("source:    config (needs_reauth)")
    expect(show.stdout).toMatch(/grant: {5}needs_reauth .*invalid_grant/)
  })
})
