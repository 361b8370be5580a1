/** herd: N concurrent cold getToken calls for one connection must reach the provider ONCE:
 *    1 process   a fresh `createTessera` (memory store), N concurrent `tessera.getToken("api")`
 *    3 processes three tessera instances (their own processes) over one Redis, N/3 concurrent gets each, sent to
 *                all three at once, on a fresh key prefix (a cold shared cache)
 *  The sandbox holds the token answer back 100 ms so that every caller arrives while the first call is in flight.
 *  Baseline: a naive client without coalescing (N concurrent got POSTs) makes N calls. Target: exactly 1 call. */
import { createTessera } from "@tessera/engine/promise"
import got from "got"
import { Agent } from "node:http"
import { randomBytes } from "node:crypto"
import { start, type Child } from "../lib/child.ts"
import { basicAuth, CONNECTION, configDoc, script, startSandbox, type Bench } from "../lib/setup.ts"

interface GetReply {
  readonly actions: Record<string, number>
  readonly errors: string[]
  readonly errorCount: number
  readonly distinctTokens: number
  readonly ms: number
}

const DELAY_MS = 100

export const bench: Bench = {
  name: "herd",
  title: "Concurrent cold gets -> upstream token calls",
  run: async ({ settings: s, log }) => {
    const n = s.herd
    const rounds = s.quick ? 1 : 3
    // short-lived tokens: the Redis entries of this bench expire on their own within a minute
    const sb = await startSandbox(60)
    const workers: Child<{ pid: number }>[] = []
    const agent = new Agent({ keepAlive: true, maxSockets: Infinity })
    try {
      const count = () => sb.call<number>("tokenCount")
      // --- baseline: no coalescing ---
      const { tokenUrl, credentials: c } = sb.info
      const auth = basicAuth(c["client_id"]!, c["client_secret"]!)
      let b0 = await count()
      let t0 = performance.now()
      await Promise.all(
        Array.from({ length: n }, () =>
          got.post(tokenUrl, {
            headers: { authorization: auth, "content-type": "application/x-www-form-urlencoded" },
            body: "grant_type=client_credentials",
            agent: { http: agent },
            retry: { limit: 0 },
            responseType: "json"
          })
        )
      )
      const naiveMs = performance.now() - t0
      const naiveCalls = (await count()) - b0
      log(`naive: ${n} concurrent POSTs -> ${naiveCalls} upstream calls in ${naiveMs.toFixed(0)} ms`)

      // --- one process ---
      const single: Array<{ calls: number; ms: number; distinct: number }> = []
      for (let r = 0; r < rounds; r++) {
        const tessera = await createTessera({ config: configDoc(sb.info) })
        try {
          await sb.call("delayNextToken", { ms: DELAY_MS })
          b0 = await count()
          t0 = performance.now()
          const tokens = await Promise.all(Array.from({ length: n }, () => tessera.getToken(CONNECTION)))
          const ms = performance.now() - t0
          const calls = (await count()) - b0
          single.push({ calls, ms, distinct: new Set(tokens).size })
          log(
            `1 process, round ${r + 1}: ${n} gets -> ${calls} upstream call(s), ${new Set(tokens).size} distinct token(s), ${ms.toFixed(0)} ms`
          )
        } finally {
          await tessera.close()
        }
      }

      // --- three processes on Redis ---
      const worker = {
        redisUrl: s.redisUrl,
        encryptionKey: randomBytes(32).toString("base64"),
        connections: configDoc(sb.info).connections
      }
      for (let i = 0; i < 3; i++)
        workers.push(
          await start<{ pid: number }>(script("redis-worker.ts"), { env: { BENCH_WORKER: JSON.stringify(worker) } })
        )
      const fleet: Array<{
        calls: number
        ms: number
        distinct: number
        actions: Record<string, number>
        errors: number
      }> = []
      const shares = [0, 1, 2].map((i) => Math.floor(n / 3) + (i < n % 3 ? 1 : 0))
      for (let r = 0; r < rounds; r++) {
        const prefix = `tessera-bench:${process.pid}:${Date.now()}:${r}:`
        const health = await Promise.all(
          workers.map((w) => w.call<{ status: string; detail: string }>("prepare", { prefix }))
        )
        if (health.some((h) => h.status !== "ok"))
          throw new Error(`Redis store not ok: ${JSON.stringify(health)} (is Redis at ${s.redisUrl}?)`)
        await sb.call("delayNextToken", { ms: DELAY_MS })
        b0 = await count()
        t0 = performance.now()
        const replies = await Promise.all(workers.map((w, i) => w.call<GetReply>("get", { n: shares[i] })))
        const ms = performance.now() - t0
        const calls = (await count()) - b0
        const actions: Record<string, number> = {}
        for (const rep of replies) for (const [k, v] of Object.entries(rep.actions)) actions[k] = (actions[k] ?? 0) + v
        const errors = replies.reduce((a, rep) => a + rep.errorCount, 0)
        if (errors > 0)
          log(
            `  errors: ${replies
              .flatMap((rep) => rep.errors)
              .slice(0, 3)
              .join("; ")}`
          )
        const distinct = Math.max(...replies.map((rep) => rep.distinctTokens))
        fleet.push({ calls, ms, distinct, actions, errors })
        log(
          `3 processes + Redis, round ${r + 1}: ${n} gets (${shares.join("+")}) -> ${calls} upstream call(s), ${errors} errors, actions ${JSON.stringify(actions)}, ${ms.toFixed(0)} ms`
        )
      }
      const worst = (xs: ReadonlyArray<{ calls: number }>) => Math.max(...xs.map((x) => x.calls))
      const fleetErrors = fleet.reduce((a, f) => a + f.errors, 0)
      return {
        rows: [
          {
            label: `upstream calls, ${n} gets, 1 process (worst of ${rounds})`,
            unit: "calls",
            value: worst(single),
            baseline: { label: "naive client", value: naiveCalls },
            target: { on: "value", op: "==", limit: 1 },
            better: "lower"
          },
          // a failed get would hide a herd: count it as a miss by reporting the errors in the value
          {
            label: `upstream calls, ${n} gets, 3 processes + Redis (worst of ${rounds})`,
            unit: "calls",
            value: worst(fleet) + fleetErrors,
            baseline: { label: "naive client", value: naiveCalls },
            target: { on: "value", op: "==", limit: 1 },
            better: "lower"
          },
          {
            label: `time for ${n} gets, 1 process (median)`,
            unit: "ms",
            value: single.map((x) => x.ms).sort((a, b) => a - b)[single.length >> 1]!,
            baseline: { label: "naive client", value: naiveMs },
            better: "lower"
          }
        ],
        details: {
          n,
          rounds,
          upstreamDelayMs: DELAY_MS,
          naive: { calls: naiveCalls, ms: naiveMs },
          single,
          fleet,
          shares
        },
        notes:
          fleetErrors > 0 ? [`${fleetErrors} gets failed in the 3-process runs (counted into the calls figure)`] : []
      }
    } finally {
      agent.destroy()
      await Promise.all([...workers.map((w) => w.stop()), sb.stop()])
    }
  }
}
