// How times and sizes are written for people (pure: no DOM).

const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' })
const absolute = new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'medium' })
const UNITS = /** @type {const} */ ([
  ['year', 365 * 24 * 3600],
  ['month', 30 * 24 * 3600],
  ['week', 7 * 24 * 3600],
  ['day', 24 * 3600],
  ['hour', 3600],
  ['minute', 60]
])

/**
 * "just now", "5 minutes ago", "yesterday"…
 *
 * @param {number} unixSeconds
 * @param {number} [nowMs]
 */
export const relativeTime = (unixSeconds, nowMs = Date.now()) => {
  const seconds = unixSeconds - nowMs / 1000
  if (Math.abs(seconds) < 45) return 'just now'
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit)
  }
  return relative.format(Math.round(seconds / 60), 'minute')
}

/**
 * "Nov 25, 2025, 11:09:12 PM" (in the browser's time zone).
 *
 * @param {number} unixSeconds
 */
export const absoluteTime = (unixSeconds) => absolute.format(new Date(unixSeconds * 1000))

/**
 * "0 B", "512 B", "1.2 kB", "3.4 MB" (powers of 1000, as file managers show them).
 *
 * @param {number} bytes
 */
export const formatSize = (bytes) => {
  if (!Number.isFinite(bytes) || bytes < 0) return ''
  if (bytes < 1000) return `${Math.round(bytes)} B`
  const units = ['kB', 'MB', 'GB', 'TB']
  let value = bytes
  let unit = ''
  for (const u of units) {
    value /= 1000
    unit = u
    if (value < 1000) break
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${unit}`
}
