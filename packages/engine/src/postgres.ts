/** @tessera/engine/postgres: the PostgreSQL connection store, shared by several tessera instances. Kept out of the
 *  main entry so that processes which never use PostgreSQL (the CLI on its SQLite file, above all) never load the
 *  `pg` client. */
export * as ConnectionStorePostgres from "./connection-store-postgres.ts"
