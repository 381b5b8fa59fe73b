/**
 * The database a command talks to: `DATABASE_URL`, or the embedded server of a laptop
 * set-up, migrated before first use.
 */
import { Effect, Layer, Option } from "effect"
import { DEFAULT_EMBEDDED_PG_DIR, type EngineConfig } from "../config.ts"
import * as Database from "../sinks/Database.ts"
import * as EmbeddedPostgres from "../sinks/EmbeddedPostgres.ts"

/** Resolves the URL (starting the embedded server when needed, for the scope's life). */
export const resolveUrl = (config: EngineConfig) =>
  Option.match(config.databaseUrl, {
    onSome: (url) => Effect.succeed(url),
    onNone: () =>
      EmbeddedPostgres.start({
        dataDir: config.embeddedPgDir,
        port: config.embeddedPgPort,
        dataDirIsDefault: config.embeddedPgDir === DEFAULT_EMBEDDED_PG_DIR
      })
  })

/** The migrated database as a layer; the embedded server, if any, lives as long as the layer. */
export const layer = (config: EngineConfig) =>
  Layer.unwrap(Effect.map(resolveUrl(config), (url) => Database.layer(url)))
