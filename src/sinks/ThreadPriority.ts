/**
 * The engine's thread first: libuv's thread pool, where DuckDB runs the lake's queries (and
 * Node its file I/O), is lowered to the lowest priority (nice 19), so when both want a core
 * the kernel runs the engine's thread first.
 *
 * Why: on 2 cores the engine's thread, V8's collector threads and DuckDB's writes are three
 * runnable threads. Measured over 1 M replayed events (the bench's engine run, one process),
 * the engine's thread waited in the kernel's run queue 0.74-0.94 s with the lake on, against
 * 0.39-0.55 s without (/proc/<pid>/task/<tid>/schedstat, seven runs each); with the pool at
 * nice 19, 0.46-0.61 s (six runs). DuckDB still gets what it needs from the cores' idle
 * time: its writes kept up, no flush waited for the one before.
 *
 * Linux only: there a thread is a task with its own nice value, named in /proc. Elsewhere
 * setpriority takes a process, so nothing is changed.
 */
import * as fs from "node:fs"
import * as os from "node:os"

const POOL_THREAD = "libuv-worker"

/** Lowers the thread pool's threads that exist now; returns how many. */
export const lowerThreadPool = (): number => {
  if (process.platform !== "linux") return 0
  let lowered = 0
  let tasks: Array<string>
  try {
    tasks = fs.readdirSync("/proc/self/task")
  } catch {
    return 0 // no /proc (a sandbox): the default priority stays
  }
  for (const task of tasks) {
    try {
      if (fs.readFileSync(`/proc/self/task/${task}/comm`, "utf8").trim() !== POOL_THREAD) continue
      os.setPriority(Number(task), os.constants.priority.PRIORITY_LOW)
      lowered++
    } catch {
      // a thread that has ended, or a kernel that refuses: it keeps its priority
    }
  }
  return lowered
}
