/** The connection store contract against the in-memory store. */
import { makeMemory } from "../src/connection-store.ts"
import { runConnectionStoreSuite } from "./connection-store.case.ts"

runConnectionStoreSuite({
  name: "memory",
  durable: false,
  fresh: async () => ({ open: async () => makeMemory(), closeInstances: async () => undefined }),
  cleanup: async () => undefined
})
