/** @tessera/engine/redis: the shared Redis token store and the fallback wrapper that keeps serving while Redis is
 *  down. Kept out of the main entry so that processes which never use Redis never load its client. */
export * as RedisStore from "./redis-store.ts"
export * as ResilientStore from "./resilient-store.ts"
