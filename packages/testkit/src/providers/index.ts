/** The registry of emulated providers and the path routing between token endpoints and API calls. */
import type { ProviderId } from "../types.ts"
import { brandbox } from "./brandbox.ts"
import { crmCom } from "./crm-com.ts"
import { cube } from "./cube.ts"
import { dvinci } from "./dvinci.ts"
import { oauth2 } from "./oauth2.ts"
import type { ProviderSpec } from "./provider.ts"
import { usageEngine } from "./usage-engine.ts"

export const PROVIDERS: Readonly<Record<ProviderId, ProviderSpec>> = {
  cube,
  dvinci,
  "usage-engine": usageEngine,
  brandbox,
  "crm-com": crmCom,
  oauth2
}

export interface Route {
  spec: ProviderSpec
  kind: "token" | "api"
  /** Under the provider's prefix but neither its token endpoint nor its API. */
  notFound: boolean
}

function isProviderId(segment: string): segment is ProviderId {
  return Object.hasOwn(PROVIDERS, segment)
}

function under(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}/`)
}

/** Routes by the first path segment (the provider id); undefined when no provider owns the path. */
export function routeFor(pathname: string): Route | undefined {
  const segment = pathname.split("/")[1] ?? ""
  if (!isProviderId(segment)) return undefined
  const spec = PROVIDERS[segment]
  if (pathname === spec.tokenPath) return { spec, kind: "token", notFound: false }
  return { spec, kind: "api", notFound: !under(pathname, spec.apiPrefix) }
}
