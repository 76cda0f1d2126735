// Split view: the source and the rendered side scroll together, both ways, by source line.
//
// A position is a fractional source line. The editor gives it for its top edge (the line block
// there and how far into it); the preview finds it between the two elements around it (each
// element's line: data-source-line, or data-line-offset plus its block's line), which are in
// document order, so both lookups are binary searches that measure a dozen elements at most.
//
// Whichever side the person last touched (wheel, touch, pointer, key) leads; scroll events of
// the other side, including the ones this module causes, are not followed back.

/** @typedef {import('@codemirror/view').EditorView} EditorView */

const ANCHORS = '[data-source-line], [data-line-offset]'

/** @param {Element} element @return {number} its first source line */
export const lineOfElement = (element) => {
  const own = /** @type {HTMLElement} */ (element).dataset
  if (own.sourceLine !== undefined) return Number(own.sourceLine)
  const block = /** @type {HTMLElement | null} */ (element.closest('[data-source-line]'))
  return Number(block?.dataset.sourceLine ?? 1) + Number(own.lineOffset ?? 0)
}

/**
 * The last index whose key is <= target (-1 if none), keys non-decreasing.
 *
 * @param {number} length
 * @param {(index: number) => number} key
 * @param {number} target
 */
export const lastAtOrBefore = (length, key, target) => {
  let low = 0
  let high = length - 1
  let found = -1
  while (low <= high) {
    const middle = (low + high) >> 1
    if (key(middle) <= target) {
      found = middle
      low = middle + 1
    } else {
      high = middle - 1
    }
  }
  return found
}

/**
 * @param {object} opts
 * @param {EditorView} opts.view
 * @param {HTMLElement} opts.preview the scrolling rendered side
 * @param {() => boolean} opts.active whether the split view is showing
 */
export const setupScrollSync = ({ view, preview, active }) => {
  const editorScroller = view.scrollDOM
  /** @type {NodeListOf<Element> | null} */
  let anchors = null
  /** @type {'editor' | 'preview'} */
  let leader = 'editor'
  let frame = 0

  const anchorList = () => (anchors ??= preview.querySelectorAll(ANCHORS))
  /** @param {Element} element y within the preview's scrolled content */
  const topOf = (element) =>
    element.getBoundingClientRect().top - preview.getBoundingClientRect().top + preview.scrollTop

  /** The source line (fractional) at the editor's top edge. */
  const editorLine = () => {
    const height = editorScroller.getBoundingClientRect().top - view.documentTop
    const block = view.lineBlockAtHeight(Math.max(0, height))
    const line = view.state.doc.lineAt(block.from).number
    const into = block.height > 0 ? Math.min(1, Math.max(0, (height - block.top) / block.height)) : 0
    return line + into
  }

  /** @param {number} line fractional */
  const scrollEditorTo = (line) => {
    const doc = view.state.doc
    const whole = Math.min(doc.lines, Math.max(1, Math.floor(line)))
    const block = view.lineBlockAt(doc.line(whole).from)
    const target = block.top + (line - whole) * block.height
    const now = editorScroller.getBoundingClientRect().top - view.documentTop
    editorScroller.scrollTop += target - now
  }

  /** @param {number} line fractional */
  const scrollPreviewTo = (line) => {
    const list = anchorList()
    const index = lastAtOrBefore(list.length, (i) => lineOfElement(list[i]), line)
    if (index < 0) {
      preview.scrollTop = 0
      return
    }
    const here = list[index]
    const hereLine = lineOfElement(here)
    let next = index + 1
    while (next < list.length && lineOfElement(list[next]) <= hereLine) next++
    const hereTop = topOf(here)
    const nextLine = next < list.length ? lineOfElement(list[next]) : view.state.doc.lines + 1
    const nextTop = next < list.length ? topOf(list[next]) : preview.scrollHeight
    preview.scrollTop = hereTop + ((line - hereLine) / (nextLine - hereLine)) * (nextTop - hereTop)
  }

  /** The source line (fractional) at the preview's top edge. */
  const previewLine = () => {
    const list = anchorList()
    const y = preview.scrollTop
    const index = lastAtOrBefore(list.length, (i) => topOf(list[i]), y)
    if (index < 0) return 1
    const here = list[index]
    const hereTop = topOf(here)
    let next = index + 1
    while (next < list.length && topOf(list[next]) <= hereTop) next++
    const hereLine = lineOfElement(here)
    const nextLine = next < list.length ? lineOfElement(list[next]) : view.state.doc.lines + 1
    const nextTop = next < list.length ? topOf(list[next]) : preview.scrollHeight
    const into = nextTop > hereTop ? Math.min(1, (y - hereTop) / (nextTop - hereTop)) : 0
    return hereLine + into * (nextLine - hereLine)
  }

  const atEnd = (/** @type {HTMLElement} */ element) =>
    element.scrollTop > 0 && element.scrollTop + element.clientHeight >= element.scrollHeight - 2
  const toEnd = (/** @type {HTMLElement} */ element) => { element.scrollTop = element.scrollHeight }

  /** Bring the follower in line with the leader. */
  const follow = () => {
    frame = 0
    if (!active()) return
    if (leader === 'editor') {
      if (atEnd(editorScroller)) toEnd(preview)
      else if (editorScroller.scrollTop === 0) preview.scrollTop = 0
      else scrollPreviewTo(editorLine())
    } else {
      if (atEnd(preview)) toEnd(editorScroller)
      else if (preview.scrollTop === 0) editorScroller.scrollTop = 0
      else scrollEditorTo(previewLine())
    }
  }
  const schedule = () => { if (frame === 0) frame = window.requestAnimationFrame(follow) }

  const lead = (/** @type {'editor' | 'preview'} */ side) => () => { leader = side }
  for (const [element, side] of /** @type {const} */ ([[view.dom, 'editor'], [preview, 'preview']])) {
    for (const type of ['wheel', 'touchstart', 'pointerdown', 'keydown']) {
      element.addEventListener(type, lead(side), { passive: true, capture: true })
    }
  }
  editorScroller.addEventListener('scroll', () => { if (leader === 'editor') schedule() }, { passive: true })
  preview.addEventListener('scroll', () => { if (leader === 'preview') schedule() }, { passive: true })

  return {
    /** The preview's content changed: measure again, and keep it where the editor is. */
    contentChanged () {
      anchors = null
      if (leader === 'editor') schedule()
    },
    /** The split view just opened: the preview starts where the editor is. */
    shown () {
      leader = 'editor'
      schedule()
    },
    editorLine,
    previewLine
  }
}
