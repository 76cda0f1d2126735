// The preview's worker (dist/preview-worker.js): renders the text and counts its words off the
// main thread, so typing stays smooth in a big document (a 2 MB text takes about a second to
// render). It answers each message with what changed since its last answer: the top-level
// blocks [start, start + removed) are replaced by `blocks` (already rendered, not yet
// sanitized: preview-dom.js does that), `lines` holds every block's first source line.
//
// in:  { seq, text, render }   render false (Edit mode): counts only
// out: { seq, counts, render: { start, removed, blocks, lines, headings } | null, ms } or
//      { seq, error }
import { createMarkdown, renderBlocks } from './markdown.js'
import { countText } from './word-count.js'

const md = createMarkdown({ lineOffsets: true })
/** What the page shows: the blocks of the last answer that rendered. @type {string[]} */
let shown = []

/** The blocks that differ: common head and tail kept. @param {string[]} next */
const changedRange = (next) => {
  let start = 0
  const common = Math.min(shown.length, next.length)
  while (start < common && shown[start] === next[start]) start++
  let tail = 0
  while (tail < common - start && shown[shown.length - 1 - tail] === next[next.length - 1 - tail]) tail++
  return { start, removed: shown.length - start - tail, added: next.slice(start, next.length - tail) }
}

self.onmessage = (/** @type {MessageEvent} */ event) => {
  const { seq, text, render } = event.data
  const started = performance.now()
  try {
    const counts = countText(text)
    if (!render) {
      self.postMessage({ seq, counts, render: null, ms: performance.now() - started })
      return
    }
    const { blocks, lines, headings } = renderBlocks(md, text)
    const { start, removed, added } = changedRange(blocks)
    shown = blocks
    const result = { start, removed, blocks: added, lines, headings }
    self.postMessage({ seq, counts, render: result, ms: performance.now() - started }, [lines.buffer])
  } catch (error) {
    self.postMessage({ seq, error: String(error) })
  }
}
