// The rendered document in the page: each top-level block the worker sends goes through
// DOMPurify before it becomes an element, and only the blocks that changed are replaced. A big
// first render is put in over several frames (about 8 ms of work each), top first, so the page
// never stalls.
//
// The blocks sit in chunks (div.md-chunk, about 64 blocks each; margins collapse through them):
// a change to one block then lays out its chunk and the list of chunks, not every block of the
// document, which is what makes a keystroke in a 2 MB document cheap.
//
// Each top-level element carries data-source-line (its first source line, 1-based); the
// elements inside carry data-line-offset (lines from their block's first line). Heading ids are
// prefixed "user-content-" (DOMPurify's SANITIZE_NAMED_PROPS, as GitHub does), so a heading
// never takes the id of one of the page's own elements; in-document links (#slug) are followed
// by the preview itself.
import DOMPurify from 'dompurify'

export const ID_PREFIX = 'user-content-'
const SLICE_MS = 8
const BATCH = 32 // blocks sanitized together
const SHOWN_AT_ONCE = 64 // blocks of a change that go in before the rest is ready
const CHUNK = 64 // blocks per chunk (a chunk that grows past twice that is split)

// a purifier of the preview's own: its hooks and settings touch nothing else in the page
const purify = DOMPurify(window)
purify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName !== 'A') return
  // markdown.js sets these; the sanitizer makes sure whatever arrives holds to them
  if (node.hasAttribute('target')) node.setAttribute('target', '_blank')
  node.setAttribute('rel', 'noopener noreferrer')
})

const SANITIZE = {
  RETURN_DOM_FRAGMENT: true,
  USE_PROFILES: { html: true }, // no SVG or MathML: Markdown makes neither
  SANITIZE_NAMED_PROPS: true,
  ADD_ATTR: ['target'],
  FORBID_TAGS: ['style', 'form', 'button', 'textarea', 'select', 'option'],
  // http(s), mailto or relative (no scheme), the same rule as markdown.js
  ALLOWED_URI_REGEXP: /^(?:(?:https?|mailto):|[^a-z]|[a-z+.-]+(?:[^a-z+.\-:]|$))/i
}

/** @param {string} html @return {DocumentFragment} */
const sanitize = (html) => /** @type {DocumentFragment} */ (/** @type {unknown} */ (purify.sanitize(html, SANITIZE)))

/** A block's element, or a div holding whatever it is when it is not exactly one element. */
const single = (/** @type {ParentNode} */ parent) => {
  const only = parent.firstElementChild
  if (only !== null && parent.children.length === 1 && parent.childNodes.length <= 2) return /** @type {HTMLElement} */ (only)
  const wrap = document.createElement('div')
  wrap.append(...parent.childNodes)
  return wrap
}

/**
 * Blocks as sanitized elements. They are sanitized together (each wrapped in a div, unwrapped
 * after), as DOMPurify's cost is mostly per call; one by one if the wrapping did not hold.
 *
 * @param {string[]} blocks
 * @return {HTMLElement[]}
 */
export const blockElements = (blocks) => {
  const wraps = [...sanitize(blocks.map((html) => `<div>${html}</div>`).join('')).children]
  if (wraps.length === blocks.length && wraps.every((wrap) => wrap.tagName === 'DIV')) return wraps.map(single)
  return blocks.map((html) => single(sanitize(html)))
}

/**
 * @typedef {{ start: number, removed: number, blocks: string[], lines: Int32Array }} BlockChange
 * @param {object} opts
 * @param {HTMLElement} opts.container the preview element (its children are the chunks)
 * @param {() => void} opts.onApplied after each change is completely in the page
 */
export const createBlockView = ({ container, onApplied }) => {
  /** The block elements, in order. @type {HTMLElement[]} */
  let elements = []
  /** @type {BlockChange[]} */
  const queue = []
  let working = false

  const newChunk = () => Object.assign(document.createElement('div'), { className: 'md-chunk' })

  /** @param {Element} chunk */
  const splitIfBig = (chunk) => {
    if (chunk.childElementCount <= 2 * CHUNK) return
    const tail = newChunk()
    tail.append(...[...chunk.children].slice(CHUNK))
    chunk.after(tail)
  }

  /**
   * Put block elements in before the block `before` (null: at the end).
   *
   * @param {HTMLElement[]} blocks
   * @param {Element | null} before
   */
  const insertBlocks = (blocks, before) => {
    if (blocks.length === 0) return
    const chunk = before?.parentElement ?? null
    if (before !== null && chunk !== null && blocks.length <= CHUNK) {
      for (const block of blocks) chunk.insertBefore(block, before)
      splitIfBig(chunk)
      return
    }
    let rest = blocks
    /** @type {Element | null} the chunk the new chunks go before */
    let next = null
    if (before !== null && chunk !== null) {
      if (before.previousElementSibling === null) {
        next = chunk
      } else {
        next = newChunk()
        const moved = []
        for (let sibling = /** @type {Element | null} */ (before); sibling; sibling = sibling.nextElementSibling) moved.push(sibling)
        next.append(...moved)
        chunk.after(next)
      }
    } else {
      const last = container.lastElementChild
      if (last !== null && last.classList.contains('md-chunk') && last.childElementCount < CHUNK) {
        const room = CHUNK - last.childElementCount
        last.append(...rest.slice(0, room))
        rest = rest.slice(room)
      }
    }
    for (let i = 0; i < rest.length; i += CHUNK) {
      const fresh = newChunk()
      fresh.append(...rest.slice(i, i + CHUNK))
      container.insertBefore(fresh, next)
    }
  }

  /** @param {HTMLElement} block */
  const removeBlock = (block) => {
    const chunk = block.parentElement
    block.remove()
    if (chunk !== null && chunk !== container && chunk.childElementCount === 0) chunk.remove()
  }

  /**
   * The change being put in. Its first blocks go straight into the page (the top of a big
   * document shows at once); the rest wait in `later` and go in together at the end, as each
   * insertion into a big preview costs a layout of all of it at the next frame.
   *
   * @type {{ change: BlockChange, made: HTMLElement[], before: HTMLElement | null, later: HTMLElement[] } | null}
   */
  let current = null

  const setLines = (/** @type {Int32Array} */ lines) => {
    for (let i = 0; i < elements.length; i++) {
      const line = String(lines[i])
      if (elements[i].dataset.sourceLine !== line) elements[i].dataset.sourceLine = line
    }
  }

  /** Starts the next queued change: its old elements go at once. False if there is none. */
  const begin = () => {
    const change = queue.shift()
    if (change === undefined) return false
    const before = elements[change.start + change.removed] ?? null
    for (const old of elements.slice(change.start, change.start + change.removed)) removeBlock(old)
    current = { change, made: [], before, later: [] }
    return true
  }

  const finish = (/** @type {NonNullable<typeof current>} */ { change, made, before, later }) => {
    insertBlocks(later, before)
    elements = elements.slice(0, change.start).concat(made, elements.slice(change.start + change.removed))
    setLines(change.lines)
    current = null
    onApplied()
  }

  const work = () => {
    const deadline = performance.now() + SLICE_MS
    do {
      if (current === null && !begin()) {
        working = false
        return
      }
      const step = /** @type {NonNullable<typeof current>} */ (current)
      const done = step.made.length
      if (done === step.change.blocks.length) {
        finish(step)
        continue
      }
      const batch = blockElements(step.change.blocks.slice(done, done + BATCH))
      if (done < SHOWN_AT_ONCE) insertBlocks(batch, step.before)
      else step.later.push(...batch)
      step.made.push(...batch)
    } while (performance.now() < deadline)
    window.setTimeout(work, 0) // let the page draw and handle input, then go on
  }

  return {
    /** Queue a change from the worker (applied in order). @param {BlockChange} change */
    apply (change) {
      queue.push(change)
      if (!working) {
        working = true
        work()
      }
    },
    /** Whether changes are still being put in. */
    busy: () => working,
    /** The block elements (the live array: do not change it). */
    elements: () => elements
  }
}
