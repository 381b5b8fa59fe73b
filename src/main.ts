/**
 * `node dist/main.js`: the daemon. Loading the modules takes a moment; a SIGINT/SIGTERM that
 * arrives before Effect's runtime owns the signals is still a clean stop (exit 0), not Node's
 * default kill.
 */
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
