/**
 * Writes the committed `data/` files (`Users.csv`, `Products.csv`) from their fixed seeds:
 *
 *     node_modules/.bin/node scripts/write-data.ts [dir]    (default: data)
 *
 * (`node_modules/.bin/node` is Node 24, which runs this TypeScript file as is.) A script of its
 * own, not a main block in the module: the module is bundled into `dist/main.js` and
 * `dist/cli.js`, where `import.meta.main` would be true.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect } from "effect"
import { writeDefaultData } from "../src/generator/writeData.ts"

writeDefaultData(process.argv[2] ?? "data").pipe(
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain
)
