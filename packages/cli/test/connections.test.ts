/** `tessera connections`: put (literal, env and file inputs, tags), ls, show (secrets as ***), rm, every problem of
 *  an invalid connection at once, tokens of stored connections, and key rotation with reencrypt, against a real
 *  SQLite file. */
import { startSandbox, type Sandbox } from "@tessera/testkit"
import { randomBytes } from "node:crypto"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { cleanup, tempDir, tessera, write } from "./services/cli.ts"

let sb: Sandbox
beforeAll(async () => {
  sb = await startSandbox()
})
afterAll(async () => {
  await sb?.close()
  cleanup()
})

const creds = () => sb.credentials.dvinci as Record<string, string>

describe("tessera connections", () => {
  it("put, ls, show, token, replace and rm a connection in the default SQLite store", async () => {
    const cwd = tempDir()
    const run = (args: string[], env: Record<string, string> = {}) => tessera(args, { cwd, env })
    const secretFile = write(join(cwd, "secret"), `${creds()["client_secret"]}\n`)
    const put = await run(
      [
        "connections",
        "put",
        "acme-jobs",
        "--provider",
        "dvinci",
        "--input",
        `base_url=${creds()["base_url"]}`,
        "--input-env",
        "client_id=ACME_USER",
        "--input-file",
        `client_secret=${secretFile}`,
        "--tag",
        "tenant=acme"
      ],
      { ACME_USER: creds()["client_id"]! }
    )
    expect(put.code, put.stderr).toBe(0)
    expect(put.stdout).toBe("created acme-jobs (dvinci)\n")
    // The default store is a file in the user data dir (here XDG_DATA_HOME=<cwd>/.data).
    expect(readdirSync(join(cwd, ".data", "tessera"))).toContain("connections.db")

    const [ls, show, json] = await Promise.all([
      run(["connections", "ls"]),
      run(["connections", "show", "acme-jobs"]),
      run(["connections", "show", "acme-jobs", "--json"])
    ])
    expect(ls.code, ls.stderr).toBe(0)
    expect(ls.stdout).toMatch(
      /^NAME\s+PROVIDER\s+SOURCE\s+STATUS\s+TAGS\nacme-jobs\s+dvinci\s+api\s+ok\s+tenant=acme\n$/
    )
    expect(show.stdout).toContain("client_secret: ***")
    expect(show.stdout).toContain(`client_id: ${creds()["client_id"]}`)
    expect(JSON.parse(json.stdout)).toMatchObject({ name: "acme-jobs", source: "api", tags: { tenant: "acme" } })
    for (const out of [ls, show, json, put]) expect(out.stdout + out.stderr).not.toContain(creds()["client_secret"])

    const token = await run(["token", "acme-jobs"])
    expect(token.code, token.stderr).toBe(0)
    expect(token.stdout.trim()).toMatch(/\S{8,}/)
    expect(sb.tokenRequests("dvinci").at(-1)?.form?.["client_secret"]).toBe(creds()["client_secret"])

    const again = await run([
      "connections",
      "put",
      "acme-jobs",
      "--provider",
      "dvinci",
      ...Object.entries(creds()).flatMap(([k, v]) => ["--input", `${k}=${v}`])
    ])
    expect(again.stdout).toBe("replaced acme-jobs (dvinci)\n")
    expect((await run(["connections", "rm", "acme-jobs"])).stdout).toBe("removed acme-jobs\n")
    const gone = await run(["connections", "rm", "acme-jobs", "--json"])
    expect(gone.code).toBe(2)
    expect(JSON.parse(gone.stderr).error.code).toBe("UnknownConnection")
  })

  it("an invalid connection exits 2 listing every problem with its place, and stores nothing", async () => {
    const cwd = tempDir()
    const r = await tessera(
      [
        "connections",
        "put",
        "bad",
        "--provider",
        "dvinci",
        "--input",
        "base_url=http://remote.example",
        "--input",
        "x=1"
      ],
      { cwd }
    )
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("/inputs/base_url: ")
    expect(r.stderr).toContain("/inputs/x: ")
    expect(r.stderr).toContain("/inputs/client_id: ")
    const json = await tessera(["connections", "put", "bad", "--provider", "nope", "--json"], { cwd })
    expect(JSON.parse(json.stderr).error.code).toBe("ConnectionInvalid")
    const env = await tessera(
      ["connections", "put", "bad", "--provider", "dvinci", "--input-env", "client_id=NOPE_X"],
      {
        cwd
      }
    )
    expect(env.code).toBe(2)
    expect(env.stderr).toMatch(/NOPE_X, which is not set/)
    expect((await tessera(["connections", "ls"], { cwd })).stdout).toBe("No connections.\n")
  })

  it("rotates the encryption key: reencrypt, then the old key can go; no secret in the file", async () => {
    const cwd = tempDir()
    const k1 = randomBytes(32).toString("base64")
    const k2 = randomBytes(32).toString("base64")
    const config = (keys: string[]) =>
      write(
        join(cwd, "tessera.yaml"),
        [
          "connection_store:",
          "  type: sqlite",
          "  path: ./connections.db",
          `  encryption_keys: [${keys.map((k) => `"${k}"`).join(", ")}]`
        ].join("\n") + "\n"
      )
    const run = (...args: string[]) => tessera(args, { cwd })
    config([k1])
    const put = await run(
      "connections",
      "put",
      "r1",
      "--provider",
      "dvinci",
      ...Object.entries(creds()).flatMap(([k, v]) => ["--input", `${k}=${v}`])
    )
    expect(put.code, put.stderr).toBe(0)
    config([k2, k1])
    const re = await run("connections", "reencrypt", "--json")
    expect(re.code, re.stderr).toBe(0)
    expect(JSON.parse(re.stdout)).toMatchObject({ rewritten: 1 })
    config([k2])
    const shown = await run("connections", "show", "r1", "--json")
    expect(shown.code, shown.stderr).toBe(0)
    expect((await run("token", "r1")).code).toBe(0)
    config([k1])
    const old = await run("connections", "show", "r1")
    expect(old.code).toBe(1)
    expect(old.stderr).toMatch(/key/)
    const bytes = readdirSync(cwd)
      .filter((f) => f.startsWith("connections.db"))
      .map((f) => readFileSync(join(cwd, f)).toString("latin1"))
      .join("")
    expect(bytes).toContain("r1")
    expect(bytes).not.toContain(creds()["client_secret"])
  })
})
