import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { DEMO_VALUES, PROVIDER_IDS, startSandbox, type ProviderId, type Sandbox } from "../src/index.ts"
import { at, bearer, claims, postForm, readJson, str } from "./helpers.ts"

let sb: Sandbox
beforeAll(async () => {
  sb = await startSandbox()
})
afterAll(() => sb.close())
beforeEach(() => sb.reset())

const dv = DEMO_VALUES.dvinci
const dvForm = { grant_type: "client_credentials", client_id: dv.client_id, client_secret: dv.client_secret }

async function dvToken(target: Sandbox = sb): Promise<string> {
  return str(at(await readJson(await postForm(target.tokenUrl("dvinci"), dvForm)), "access_token"))
}

function oauth2Token(): Promise<string> {
  const o = DEMO_VALUES.oauth2
  return postForm(sb.tokenUrl("oauth2"), {
    grant_type: "client_credentials",
    client_id: o.client_id,
    client_secret: o.client_secret
  })
    .then(readJson)
    .then((body) => str(at(body, "access_token")))
}

function api(token: string, target: Sandbox = sb): Promise<Response> {
  return fetch(`${target.base("dvinci")}/restApi/ping`, { headers: bearer(token) })
}

/** Input names declared in providers/<id>.yaml, and those required (no `required: false`, no default). */
function manifestInputs(id: ProviderId): { all: string[]; required: string[] } {
  const text = readFileSync(fileURLToPath(new URL(`../../../providers/${id}.yaml`, import.meta.url)), "utf8")
  const block = text.split(/^inputs:\n/m)[1]?.split(/^\S/m)[0] ?? ""
  const lines = [...block.matchAll(/^ {2}([a-z_]+):(.*)$/gm)]
  return {
    all: lines.map((m) => m[1] ?? ""),
    required: lines.filter((m) => !/required: false|default:/.test(m[2] ?? "")).map((m) => m[1] ?? "")
  }
}

describe("addresses and inputs", () => {
  it("serves every provider under its id on 127.0.0.1", () => {
    expect(sb.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(sb.base("usage-engine")).toBe(`${sb.url}/usage-engine`)
    expect(sb.tokenUrl("brandbox")).toBe(`${sb.url}/brandbox/rest/v4/accessToken`)
  })

  it.each(PROVIDER_IDS)("gives %s inputs the manifest declares, covering every required one", (id) => {
    const { all, required } = manifestInputs(id)
    const keys = Object.keys(sb.credentials[id])
    expect(required.length).toBeGreaterThan(0)
    for (const key of keys) expect(all).toContain(key)
    for (const key of required) expect(keys).toContain(key)
  })
})

describe("recording", () => {
  it("records requests in order with parsed bodies and answered status", async () => {
    await postForm(sb.tokenUrl("dvinci"), dvForm, { "X-Probe": "1" })
    await fetch(`${sb.base("dvinci")}/restApi/a?b=c`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"n":1}'
    })
    const [token, call] = sb.requests
    expect(sb.requests).toHaveLength(2)
    expect(token).toMatchObject({
      provider: "dvinci",
      kind: "token",
      method: "POST",
      path: "/dvinci/plt/oauth2/token",
      form: dvForm,
      status: 200
    })
    expect(token?.headers["x-probe"]).toBe("1")
    expect(token?.rawBody).toBe(new URLSearchParams(dvForm).toString())
    expect(call).toMatchObject({ kind: "api", path: "/dvinci/restApi/a?b=c", json: { n: 1 }, status: 401 })
    expect(sb.tokenRequests()).toEqual([token])
    expect(sb.tokenRequests("cube")).toEqual([])
  })

  it("reset clears requests, faults and tokens", async () => {
    const token = await dvToken()
    sb.inject("dvinci", { type: "status", status: 500 })
    sb.reset()
    expect(sb.requests).toEqual([])
    expect((await api(token)).status).toBe(401)
    expect((await postForm(sb.tokenUrl("dvinci"), dvForm)).status).toBe(200)
  })
})

describe("framing", () => {
  it("answers 405 with Allow: POST for other methods on token endpoints", async () => {
    const res = await fetch(sb.tokenUrl("cube"))
    expect(res.status).toBe(405)
    expect(res.headers.get("allow")).toBe("POST")
  })

  it("answers 413 for bodies over 64 KiB", async () => {
    const res = await postForm(sb.tokenUrl("dvinci"), { ...dvForm, pad: "x".repeat(70 * 1024) })
    expect(res.status).toBe(413)
    expect(at(await readJson(res), "error")).toBe("request_too_large")
  })

  it("rejects token parameters in the query string", async () => {
    const res = await postForm(`${sb.tokenUrl("dvinci")}?grant_type=client_credentials`, dvForm)
    expect(res.status).toBe(400)
  })

  it("answers 404 for paths no provider owns", async () => {
    expect((await fetch(`${sb.url}/nobody/token`)).status).toBe(404)
    expect(sb.requests).toEqual([])
  })
})

describe("token validity", () => {
  it("revokeTokens invalidates access tokens of one provider or all", async () => {
    const dvinci = await dvToken()
    const oauth = await oauth2Token()
    expect((await api(dvinci)).status).toBe(200)
    sb.revokeTokens("oauth2")
    expect((await api(dvinci)).status).toBe(200)
    expect((await fetch(`${sb.base("oauth2")}/api/x`, { headers: bearer(oauth) })).status).toBe(401)
    sb.revokeTokens()
    expect((await api(dvinci)).status).toBe(401)
  })

  it("rejects a token once the server clock passes its exp, and accepts it again when turned back", async () => {
    const token = await dvToken()
    sb.setClockSkew(1800_000)
    expect((await api(token)).status).toBe(401)
    sb.setClockSkew(1790_000)
    expect((await api(token)).status).toBe(200)
    sb.setClockSkew(0)
  })

  it("a TTL of 0 issues already-expired tokens", async () => {
    sb.setTtl("dvinci", 0)
    const token = await dvToken()
    sb.setTtl("dvinci", 1800)
    expect((await api(token)).status).toBe(401)
    expect(() => sb.setTtl("dvinci", -1)).toThrow(RangeError)
  })

  it("shows clock skew in the Date header and in issued iat/exp", async () => {
    const skew = 3 * 3600_000
    const skewed = await startSandbox({ clockSkewMs: skew, ttlSeconds: { dvinci: 600 } })
    try {
      const res = await postForm(skewed.tokenUrl("dvinci"), dvForm)
      const date = Date.parse(str(res.headers.get("date")))
      expect(Math.abs(date - (Date.now() + skew))).toBeLessThan(3000)
      const c = claims(str(at(await readJson(res), "access_token")))
      expect(Math.abs(Number(c["iat"]) * 1000 - (Date.now() + skew))).toBeLessThan(3000)
      expect(Number(c["exp"]) - Number(c["iat"])).toBe(600)
      const plain = await fetch(`${sb.url}/nobody`)
      expect(Math.abs(Date.parse(str(plain.headers.get("date"))) - Date.now())).toBeLessThan(3000)
    } finally {
      await skewed.close()
    }
  })
})

describe("close", () => {
  function servers(): number {
    return process.getActiveResourcesInfo().filter((r) => r === "TCPServerWrap").length
  }

  it("ends in-flight requests at once and releases the listening socket", async () => {
    const before = servers()
    const own = await startSandbox()
    expect(servers()).toBe(before + 1)
    own.inject("dvinci", { type: "delay", ms: 10_000 })
    const pending = postForm(own.tokenUrl("dvinci"), dvForm)
    while (own.requests.length === 0) await new Promise((r) => setTimeout(r, 5))
    const started = performance.now()
    await own.close()
    await expect(pending).rejects.toThrow()
    expect(performance.now() - started).toBeLessThan(1000)
    expect(servers()).toBe(before)
    await expect(fetch(own.tokenUrl("dvinci"))).rejects.toThrow()
    await own.close()
  })
})

describe("main.ts", () => {
  it("prints the sandbox as one JSON line and exits 0 on SIGTERM", async () => {
    const main = fileURLToPath(new URL("../src/main.ts", import.meta.url))
    const child = spawn(process.execPath, [main, "--port", "0"], { stdio: ["ignore", "pipe", "inherit"] })
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
    const line = await new Promise<string>((resolve) => createInterface({ input: child.stdout }).once("line", resolve))
    const info = JSON.parse(line) as unknown
    const inputs = at(info, "providers.dvinci.inputs") as Record<string, string>
    expect(at(info, "providers.dvinci.base")).toBe(inputs["base_url"])
    const res = await postForm(str(at(info, "providers.dvinci.token_url")), {
      grant_type: "client_credentials",
      client_id: str(inputs["client_id"]),
      client_secret: str(inputs["client_secret"])
    })
    expect(res.status).toBe(200)
    child.kill("SIGTERM")
    expect(await exited).toBe(0)
  })
})
