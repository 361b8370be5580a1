/** startSandbox: one loopback HTTP server emulating every bundled provider, with the Sandbox control handle. */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { Clock } from "./clock.ts"
import { dispatch, type SandboxState } from "./dispatch.ts"
import { FaultQueues, type Fault } from "./faults.ts"
import { PROVIDERS } from "./providers/index.ts"
import { Sleeper } from "./timers.ts"
import { TokenStore } from "./tokens.ts"
import { PROVIDER_IDS, type ProviderId, type RecordedRequest, type Sandbox, type SandboxOptions } from "./types.ts"

function checkTtl(seconds: number): number {
  if (!Number.isInteger(seconds) || seconds < 0)
    throw new RangeError(`ttl must be a non-negative integer of seconds, got ${String(seconds)}`)
  return seconds
}

function checkProvider(provider: ProviderId): ProviderId {
  if (!PROVIDER_IDS.includes(provider)) throw new TypeError(`unknown sandbox provider: ${String(provider)}`)
  return provider
}

function urlHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host
}

export async function startSandbox(opts: SandboxOptions = {}): Promise<Sandbox> {
  const host = opts.host ?? "127.0.0.1"
  const clock = new Clock(opts.clockSkewMs ?? 0)
  const tokens = new TokenStore(clock)
  const faults = new FaultQueues()
  const sleeper = new Sleeper()
  const ttl = new Map<ProviderId, number>(
    PROVIDER_IDS.map((id) => [id, checkTtl(opts.ttlSeconds?.[id] ?? PROVIDERS[id].defaultTtl)])
  )
  let requests: RecordedRequest[] = []

  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(opts.port ?? 0, host, () => {
      server.off("error", reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  const url = `http://${urlHost(host)}:${port}`

  const state: SandboxState = {
    clock,
    tokens,
    faults,
    sleeper,
    url,
    ttlOf: (provider) => ttl.get(provider) ?? PROVIDERS[provider].defaultTtl,
    record: (request) => {
      requests.push(request)
    }
  }
  server.on("request", (req, res) => {
    dispatch(state, req, res).catch(() => {
      // the connection went away mid-request (client abort or close()); nothing is left to answer
      res.destroy()
    })
  })

  const credentials = Object.fromEntries(PROVIDER_IDS.map((id) => [id, PROVIDERS[id].credentials(url)])) as Record<
    ProviderId,
    Record<string, string>
  >
  let closing: Promise<void> | undefined

  return {
    url,
    base: (provider) => `${url}/${checkProvider(provider)}`,
    tokenUrl: (provider) => `${url}${PROVIDERS[checkProvider(provider)].tokenPath}`,
    credentials,
    get requests() {
      return requests
    },
    tokenRequests: (provider) =>
      requests.filter((r) => r.kind === "token" && (provider === undefined || r.provider === provider)),
    inject: (provider: ProviderId, fault: Fault, times?: number) =>
      faults.add(checkProvider(provider), "token", fault, times),
    injectApi: (provider: ProviderId, fault: Fault, times?: number) =>
      faults.add(checkProvider(provider), "api", fault, times),
    revokeTokens: (provider) => tokens.revokeAccess(provider === undefined ? undefined : checkProvider(provider)),
    setTtl: (provider, seconds) => {
      ttl.set(checkProvider(provider), checkTtl(seconds))
    },
    setClockSkew: (ms) => clock.setSkew(ms),
    reset: () => {
      requests = []
      faults.clear()
      tokens.clear()
    },
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
        sleeper.cancelAll()
      })
      return closing
    }
  }
}
