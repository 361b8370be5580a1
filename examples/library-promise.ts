/** The Promise API in a plain TypeScript service. Runnable without accounts: it starts the sandbox providers on
 *  loopback and points two connections at them. `pnpm example:promise` */
import { createTessera } from "@tessera/engine/promise"
import { startSandbox } from "@tessera/testkit"

const sandbox = await startSandbox()
const tessera = await createTessera({
  config: {
    connections: {
      jobs: { provider: "dvinci", inputs: sandbox.credentials.dvinci },
      crm: { provider: "crm-com", inputs: sandbox.credentials["crm-com"] }
    }
  }
})
try {
  const events: string[] = []
  const unsubscribe = tessera.subscribe((e) => events.push(`${e.type}:${e.connection}`))

  // A token, cached and renewed before it expires; concurrent callers share one request.
  const [a, b] = await Promise.all([tessera.getToken("crm"), tessera.getToken("crm")])
  console.log("crm token shared by concurrent callers:", a === b)

  // An authenticated API call: the path is relative to the provider's api.base_url (d.vinci: <host>/restApi).
  const res = await tessera.fetch("jobs", "/dvinciUsers/")
  console.log("GET /restApi/dvinciUsers/ ->", res.status, await res.json())

  // The engine explains itself.
  const result = await tessera.getTokenResult("jobs")
  console.log("jobs:", result.decision.action, "-", result.decision.reason)
  unsubscribe()
  console.log("events:", events.join(", "))
} finally {
  await tessera.close()
  await sandbox.close()
}
