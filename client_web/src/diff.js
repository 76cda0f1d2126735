// Reading the server's unified diffs (GET .../versions/{a}/diff/{b}) into lines to draw (pure).
//
// The file header (`--- …` / `+++ …`) is recognised only before the first hunk, so a removed
// line that starts with "--" (shown as "---…") is still a removed line.

/**
 * @typedef {{ kind: 'add' | 'del' | 'context' | 'hunk' | 'file' | 'note', text: string }} DiffLine
 */

/**
 * @param {string} diff unified diff text
 * @return {{ lines: DiffLine[], added: number, removed: number }}
 */
export const parseUnifiedDiff = (diff) => {
  /** @type {DiffLine[]} */
  const lines = []
  let added = 0
  let removed = 0
  let inHunk = false
  const raw = diff.endsWith('\n') ? diff.slice(0, -1) : diff
  if (raw === '') return { lines, added, removed }
  for (const text of raw.split('\n')) {
    if (text.startsWith('@@')) {
      inHunk = true
      lines.push({ kind: 'hunk', text })
    } else if (!inHunk) {
      lines.push({ kind: 'file', text })
    } else if (text.startsWith('\\')) {
      lines.push({ kind: 'note', text }) // "\ No newline at end of file"
    } else if (text.startsWith('+')) {
      added++
      lines.push({ kind: 'add', text })
    } else if (text.startsWith('-')) {
      removed++
      lines.push({ kind: 'del', text })
    } else {
      lines.push({ kind: 'context', text })
    }
  }
  return { lines, added, removed }
}

/**
 * "2 lines added, 1 removed", "No changes"…
 *
 * @param {number} added
 * @param {number} removed
 */
export const diffSummary = (added, removed) => {
  const lines = (/** @type {number} */ n) => `${n} ${n === 1 ? 'line' : 'lines'}`
  if (added === 0 && removed === 0) return 'No changes'
  if (removed === 0) return `${lines(added)} added`
  if (added === 0) return `${lines(removed)} removed`
  return `${lines(added)} added, ${removed} removed`
}
