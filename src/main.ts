/**
 * `node dist/main.js`: the daemon. Loading the modules takes a moment; a SIGINT/SIGTERM that
 * arrives before Effect's runtime owns the signals is still a clean stop (exit 0), not Node's
 * default kill.
 */
import * as nodeModule from "node:module"
import { quietKafkajsTimerWarning } from "./Warnings.ts"

// compiled code cached on disk (NODE_COMPILE_CACHE, or the OS's temporary folder): loading the
// modules is most of a start, and a cached start loads them about a third faster
nodeModule.enableCompileCache?.()
quietKafkajsTimerWarning()

const early = (): void => { stopRequested = true }
let stopRequested = false
process.once("SIGTERM", early)
process.once("SIGINT", early)

const { daemon } = await import("./Daemon.ts")
const { runMain } = await import("./Process.ts")
// a signal that came in while modules loaded is dispatched on the next turn of the event loop
await new Promise((resolve) => setImmediate(resolve))
process.removeListener("SIGTERM", early)
process.removeListener("SIGINT", early)
if (stopRequested) process.exit(0)
runMain(daemon, "insights-engine")

// SPEC §8: a stop ends within 10 s. The finalizers bound their own waits (the sinks get 5 s,
// the Kafka consumer 4 s); should one still hang (a native call, a socket that never closes),
// the process exits anyway: whatever was not committed is read again at the next start, so
// leaving now loses nothing.
const STOP_DEADLINE_MS = 9_500
const watchdog = (): void => {
  setTimeout(() => {
    process.stderr.write(`insights-engine: did not stop within ${STOP_DEADLINE_MS} ms; exiting (uncommitted work is read again at the next start)\n`)
    process.exit(0)
  }, STOP_DEADLINE_MS).unref()
}
process.once("SIGTERM", watchdog)
process.once("SIGINT", watchdog)
