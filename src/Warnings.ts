/**
 * Node's process warnings, less one: kafkajs 2.2.4's request queue arms a timer for
 * `throttledUntil − now` with `throttledUntil` still −1 when the broker has never throttled
 * it, a delay of about −now, which Node (since 23) reports as a TimeoutNegativeWarning at
 * every start. The timer fires at once either way (Node makes it 1 ms), so the warning says
 * nothing to an operator; every other warning is printed as Node prints it.
 */
const isKafkajsNegativeTimeout = (w: Error): boolean =>
  w.name === "TimeoutNegativeWarning" && /\bscheduleCheckPendingRequests\b/.test(w.stack ?? "") // the method's name survives the bundle; its file's does not

export const quietKafkajsTimerWarning = (): void => {
  const printers = process.listeners("warning")
  process.removeAllListeners("warning")
  process.on("warning", (w) => {
    if (isKafkajsNegativeTimeout(w)) return
    for (const print of printers) print(w)
  })
}
