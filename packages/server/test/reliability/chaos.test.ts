/** Chaos across three `tessera serve` processes (main.ts) on a private Redis (tokens) and a private PostgreSQL
 *  (connections): 1,000 connections over 50 tenants, 200 concurrent callers, 2 s token lifetimes with one-time
 *  refresh tokens (the password grant of the sandbox's oauth2 provider, which rotates them). One instance is killed
 *  with SIGKILL every few seconds and started again; Redis is restarted once and PostgreSQL once.
 *
 *  Proven: no token leaves an instance below its serve floor (one that arrives expired was 250 ms or more on its
 *  way); no token of one connection (or tenant) is served for another; every instance comes back. Measured and
 *  printed (figures, not assertions, see README "Reliability"): tokens expired on arrival (a loaded machine's
 *  delivery), the callers' errors (refused or reset, timeouts, statuses) and how long they lasted, upstream token
 *  calls per credential against duration / lifetime, refresh tokens the provider refused and second password
 *  grants, each by the fault before it. A process killed between the provider's answer and the grant write loses
 *  that rotated refresh token: with a strict one-time refresh token nothing can recover it but a new grant.
 *  Short under CI (20 s, 100 connections, 50 callers); TESSERA_LONG=1 runs the full figures for 120 s. */
import { startSandbox, type Sandbox } from "@tessera/testkit"
import { spawn, type ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { Agent, request } from "node:http"
import { loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { canRunPostgres, postgresServer, type PostgresServer } from "../../../engine/test/services/postgres-server.ts"
import { hasRedisServer, redisServer, type RedisServer } from "../../../engine/test/services/redis-server.ts"

const main = fileURLToPath(new URL("../../src/main.ts", import.meta.url))
const long = process.env["TESSERA_LONG"] === "1"
const durationMs = long ? 120_000 : 20_000
// The issue's figures under TESSERA_LONG=1; under CI a tenth of the connections and a quarter of the callers, so that
// the renewals the 2 s lifetimes demand fit a 2-core machine that runs other suites beside this one.
const connections = long ? 1000 : 100
const tenants = 50
const callers = long ? 200 : 50
const lifetimeS = 2
const ADMIN = `chaos-admin-${randomBytes(8).toString("hex")}`
const tenantKey = (t: number) => `chaos-tenant-${t}-${ADMIN.slice(-8)}`

interface Instance {
  child: ChildProcess
  url: string | undefined
}

let sb: Sandbox
let redis: RedisServer
let pg: PostgresServer
let dir: string
let config: string
const instances: Instance[] = []

const startInstance = (slot: number): Promise<void> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [main, "--config", config, "--port", "0"], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, XDG_DATA_HOME: join(dir, ".data"), TESSERA_LOG_LEVEL: "error" }
    })
    const instance: Instance = { child, url: undefined }
    instances[slot] = instance
    let stderr = ""
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString()
    })
    const timer = setTimeout(() => reject(new Error(`instance ${slot} did not start: ${stderr}`)), 30_000)
    child.on("exit", (code) => {
      instance.url = undefined
      clearTimeout(timer)
      reject(new Error(`instance ${slot} exited (${code}) before listening: ${stderr}`))
    })
    createInterface({ input: child.stdout }).on("line", (l) => {
      const m = /"url":"(http:\/\/[^"]+)"/.exec(l)
      if (instance.url === undefined && l.includes('"listening"') && m) {
        instance.url = m[1]!
        clearTimeout(timer)
        resolve()
      }
    })
  })

const agent = new Agent({ keepAlive: true, maxSockets: 256 })
const get = (url: string, key: string): Promise<{ status: number; body: string }> =>
  new Promise((resolve) => {
    const req = request(url, { agent, headers: { authorization: `Bearer ${key}` }, timeout: 5000 }, (res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", (c: string) => {
        body += c
      })
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }))
      res.on("error", () => resolve({ status: 0, body: "" }))
    })
    req.on("timeout", () => req.destroy())
    req.on("error", () => resolve({ status: 0, body: "" }))
    req.end()
  })

const put = (url: string, name: string, body: unknown): Promise<number> =>
  new Promise((resolve, reject) => {
    const text = JSON.stringify(body)
    const req = request(
      `${url}/v1/connections/${name}`,
      { method: "PUT", agent, headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" } },
      (res) => {
        res.resume()
        res.on("end", () => resolve(res.statusCode ?? 0))
      }
    )
    req.on("error", reject)
    req.end(text)
  })

const claims = (jwt: string): { scope?: string; exp?: number } | undefined => {
  try {
    return JSON.parse(Buffer.from(jwt.split(".")[1] ?? "", "base64url").toString("utf8"))
  } catch {
    return undefined
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const canRun = hasRedisServer && canRunPostgres
const describeChaos = canRun || process.env["CI"] === "true" ? describe : describe.skip
if (!canRun) console.log("SKIP chaos: needs redis-server and PostgreSQL's binaries (initdb, pg_ctl) on this machine")

describeChaos(
  "chaos: three instances, SIGKILLs, a Redis and a PostgreSQL restart",
  { timeout: durationMs + 180_000 },
  () => {
    beforeAll(async () => {
      if (!canRun) throw new Error("chaos needs redis-server and PostgreSQL's binaries (initdb, pg_ctl) on CI")
      sb = await startSandbox({ ttlSeconds: { oauth2: lifetimeS } })
      redis = await redisServer()
      await redis.start()
      pg = await postgresServer()
      dir = mkdtempSync(join(tmpdir(), "tessera-chaos-"))
      config = join(dir, "tessera.yaml")
      const keys = Array.from(
        { length: tenants },
        (_, t) => `    - { name: t${t}, key: "${tenantKey(t)}", tags: { tenant: t${t} }, scopes: [token] }`
      )
      writeFileSync(
        config,
        [
          "connection_store:",
          "  type: postgres",
          `  url: ${pg.url}`,
          `  encryption_keys: ["${randomBytes(32).toString("base64")}"]`,
          "store:",
          "  type: redis",
          `  url: ${redis.url}`,
          `  encryption_key: "${randomBytes(32).toString("base64")}"`,
          "server:",
          "  api_keys:",
          `    - { name: admin, key: "${ADMIN}", scopes: [token, "connections:read", "connections:write"] }`,
          ...keys,
          "http: { timeout_ms: 2000, total_timeout_ms: 4000, retries: 1 }"
        ].join("\n") + "\n"
      )
      await Promise.all([0, 1, 2].map(startInstance))
      const creds = { ...sb.credentials.oauth2, grant_type: "password", username: "alice", password: "alice-password" }
      let next = 0
      await Promise.all(
        Array.from({ length: 20 }, async () => {
          for (let i = next++; i < connections; i = next++) {
            const status = await put(instances[i % 3]!.url!, `c${i}`, {
              provider: "oauth2",
              inputs: { ...creds, scope: `c-${i}` },
              tags: { tenant: `t${i % tenants}` }
            })
            if (status !== 201) throw new Error(`PUT c${i} answered ${status}`)
          }
        })
      )
    }, 180_000)

    afterAll(async () => {
      for (const i of instances) i?.child.kill("SIGKILL")
      agent.destroy()
      await sb?.close()
      await redis?.stop()
      pg?.destroy()
      if (dir) rmSync(dir, { recursive: true, force: true })
    })

    it("serves no expired token and no other connection's token through kills and restarts", async () => {
      const stats = { ok: 0, expired: 0, foreign: 0, errors: 0, errorSpans: [] as Array<[number, number]> }
      // What the errors were: refused or reset (an instance going down), a caller timeout (5 s), an HTTP status.
      const errorKinds = new Map<string, number>()
      // The least life a served token had left when it arrived, and the answers that took 3 s or more.
      let leastLeftMs = Number.POSITIVE_INFINITY
      // The round trips of the answers that carried an expired token: how long such an answer was on its way.
      const expiredTrips: number[] = []
      let slow = 0
      // Where the provider's token calls stood at each fault, to tell which fault a fallback followed.
      const marks: Array<{ fault: string; at: number; time: number }> = []
      const mark = (fault: string) => marks.push({ fault, at: sb.tokenRequests("oauth2").length, time: Date.now() })
      // Caller timeouts by the fault before the request was sent, and how long after it.
      const timeouts = new Map<string, { n: number; latestMs: number }>()
      const started = Date.now()
      const end = started + durationMs
      const timeline: Array<{ ok: number; errors: number; maxMs: number }> = []
      let lastError = 0
      const caller = async () => {
        while (Date.now() < end) {
          const live = instances.filter((x) => x.url !== undefined)
          const instance = live[Math.floor(Math.random() * live.length)]
          if (!instance?.url) {
            await sleep(50)
            continue
          }
          const i = Math.floor(Math.random() * connections)
          const sent = Date.now()
          const r = await get(`${instance.url}/v1/connections/c${i}/token`, tenantKey(i % tenants))
          const now = Date.now()
          const tick = (timeline[Math.floor((now - started) / 1000)] ??= { ok: 0, errors: 0, maxMs: 0 })
          tick.maxMs = Math.max(tick.maxMs, now - sent)
          if (now - sent >= 3000) slow++
          if (r.status === 200) tick.ok++
          else tick.errors++
          if (r.status !== 200) {
            stats.errors++
            const kind = r.status !== 0 ? `HTTP ${r.status}` : now - sent >= 4900 ? "timeout" : "refused or reset"
            errorKinds.set(kind, (errorKinds.get(kind) ?? 0) + 1)
            if (kind === "timeout") {
              const m = marks.filter((x) => x.time <= sent).at(-1)
              const t = timeouts.get(m?.fault ?? "no fault") ?? { n: 0, latestMs: 0 }
              timeouts.set(m?.fault ?? "no fault", {
                n: t.n + 1,
                latestMs: Math.max(t.latestMs, sent - (m?.time ?? started))
              })
            }
            const span = stats.errorSpans.at(-1)
            if (span && now - lastError < 1000) span[1] = now
            else stats.errorSpans.push([now, now])
            lastError = now
            await sleep(20)
            continue
          }
          const c = claims(JSON.parse(r.body).access_token)
          stats.ok++
          if (c?.scope !== `c-${i}`) stats.foreign++
          if ((c?.exp ?? 0) * 1000 <= now) {
            stats.expired++
            expiredTrips.push(now - sent)
          }
          leastLeftMs = Math.min(leastLeftMs, (c?.exp ?? 0) * 1000 - now)
        }
      }
      // The faults run side by side: a SIGKILL every 3 s (and a restart half a second later), Redis down for a second
      // at a third of the run, PostgreSQL restarted at two thirds.
      let restarts = 0
      const kills = async () => {
        let n = 0
        for (await sleep(3000); Date.now() < end - 2000; await sleep(3000)) {
          const slot = n++ % 3
          mark("SIGKILL")
          instances[slot]!.child.kill("SIGKILL")
          await sleep(500)
          // As a supervisor would: an instance started while PostgreSQL restarts cannot open the connection store
          // and exits; it is started again (at most 10 times, a second apart).
          for (let tries = 1; ; tries++) {
            const ok = await startInstance(slot).then(
              () => true,
              (e: Error) => {
                if (tries >= 10) throw e
                return false
              }
            )
            if (ok) break
            restarts++
            await sleep(1000)
          }
        }
        return n
      }
      const restartRedis = async () => {
        await sleep(durationMs / 3)
        mark("Redis restart")
        await redis.stop()
        await sleep(1000)
        await redis.start()
        return true
      }
      const restartPostgres = async () => {
        await sleep((2 * durationMs) / 3)
        mark("PostgreSQL restart")
        pg.restart()
        return true
      }
      const chaos = async () => {
        const [k, redisDone, pgDone] = await Promise.all([kills(), restartRedis(), restartPostgres()])
        return { kills: k, redisDone, pgDone }
      }
      const [, faults] = await Promise.all([Promise.all(Array.from({ length: callers }, caller)), chaos()])
      const seconds = (Date.now() - started) / 1000
      const tokenCalls = sb.tokenRequests("oauth2")
      const refreshRejected = tokenCalls.filter(
        (r) => r.form?.["grant_type"] === "refresh_token" && r.status === 400
      ).length
      const passwordGrants = new Map<string, number>()
      for (const r of tokenCalls)
        if (r.form?.["grant_type"] === "password")
          passwordGrants.set(r.form["scope"] ?? "", (passwordGrants.get(r.form["scope"] ?? "") ?? 0) + 1)
      const fellBack = [...passwordGrants.values()].filter((n) => n > 1).length
      // Each refused refresh token and each second password grant, by the fault it followed.
      // A second password grant either follows a refused refresh token (a fallback: the refresh token was lost), or
      // repeats a first acquisition that never redeemed a refresh token (its answer was lost with a killed instance,
      // or its attempt retried), or follows refreshes none of which was refused (neither: it should not happen).
      const after = new Map<string, number>()
      const since = new Map<string, "none" | "refreshed" | "refused">()
      tokenCalls.forEach((r, i) => {
        const grant = r.form?.["grant_type"]
        const scope = r.form?.["scope"] ?? ""
        const refused = grant === "refresh_token" && r.status === 400
        const fault = marks.filter((m) => m.at <= i).at(-1)?.fault ?? "no fault"
        const count = (what: string) =>
          after.set(`${what} after ${fault}`, (after.get(`${what} after ${fault}`) ?? 0) + 1)
        if (refused) count("refresh token refused")
        if (grant === "password") {
          const before = since.get(scope)
          if (before === "refused") count("password grant again (fallback)")
          else if (before === "none") count("password grant again (first acquisition repeated)")
          else if (before === "refreshed") count("password grant again (no refusal before it)")
          since.set(scope, "none")
        } else if (grant === "refresh_token" && since.get(scope) !== "refused")
          since.set(scope, refused ? "refused" : "refreshed")
      })
      const perCredential = tokenCalls.length / connections
      const longestErrorSpanMs = Math.max(0, ...stats.errorSpans.map(([a, b]) => b - a))
      console.log(
        `chaos: ${seconds.toFixed(0)} s, ${faults.kills} SIGKILLs, Redis restarted ${faults.redisDone}, PostgreSQL restarted ${faults.pgDone}; ` +
          `${stats.ok} tokens served, ${stats.expired} expired, ${stats.foreign} of another connection; ` +
          `${stats.errors} caller errors in ${stats.errorSpans.length} spans (longest ${longestErrorSpanMs} ms); ` +
          `${tokenCalls.length} token calls (${perCredential.toFixed(1)} per credential, duration/lifetime ${(seconds / lifetimeS).toFixed(1)}); ` +
          `${refreshRejected} refresh tokens the provider did not take; ${fellBack} connections fell back to a new password grant`
      )
      console.log(
        `chaos detail: ${restarts} instance starts failed and were retried; errors ${[...errorKinds].map(([k, n]) => `${n} ${k}`).join(", ") || "none"}; ` +
          `timeouts ${[...timeouts].map(([k, t]) => `${t.n} sent after ${k} (up to ${t.latestMs} ms after)`).join(", ") || "none"}; ` +
          `${slow} answers took 3 s or more; least life left on arrival ${leastLeftMs} ms; ` +
          `round trips of the answers with an expired token ${expiredTrips.length === 0 ? "none" : `${Math.min(...expiredTrips)}-${Math.max(...expiredTrips)} ms`}; ` +
          `${[...after].map(([k, n]) => `${n} ${k}`).join(", ") || "no refresh token lost"}; load ${loadavg()
            .map((x) => x.toFixed(2))
            .join(" ")}`
      )
      console.log(
        `chaos timeline (ok/errors/max ms per second): ${timeline.map((t) => `${t.ok}/${t.errors}/${t.maxMs}`).join(" ")}`
      )
      expect(stats.ok).toBeGreaterThan(callers)
      // How many arrive expired is a figure (it depends on the machine's load): the README's reliability section.
      expect(stats.foreign).toBe(0)
      // The serve floor (expiry.ts): no token leaves an instance with less than a quarter of its lifetime left, and
      // these live at least 1 s (a 2 s lifetime, its JWT exp in whole seconds), so a token can be expired on arrival
      // only when its answer was on its way 250 ms or more after the instance chose it (a loaded machine): never on
      // a quicker round trip.
      for (const trip of expiredTrips) expect(trip).toBeGreaterThanOrEqual(250)
      expect(faults.kills).toBeGreaterThanOrEqual(2)
      expect(faults.redisDone && faults.pgDone).toBe(true)
      // Every instance came back and answers.
      for (const i of instances) expect((await get(`${i.url}/healthz`, ADMIN)).status).toBe(200)
    })
  }
)
