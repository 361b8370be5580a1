/** Types for the three undici modules api-http.ts loads by path (undici types only its index).
 *
 *  @internal */
declare module "undici/lib/dispatcher/agent.js" {
  import type { Agent } from "undici"
  const agent: typeof Agent
  export default agent
}
declare module "undici/lib/dispatcher/dispatcher.js" {
  import type { Dispatcher } from "undici"
  const dispatcher: typeof Dispatcher
  export default dispatcher
}
declare module "undici/lib/api/index.js" {
  import type { Dispatcher } from "undici"
  const api: Pick<Dispatcher, "request" | "stream" | "pipeline" | "connect" | "upgrade">
  export default api
}
