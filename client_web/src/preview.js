// The rendered side of the editor page: the Edit / Split / View modes (view-modes.js), the
// rendered document, kept current as anyone types (preview-worker.js renders, preview-dom.js
// sanitizes and puts in what changed), split-view scroll sync (scroll-sync.js), the table of
// contents of View mode and the status bar's word count (word-count.js).
//
// Updates are coalesced: a change marks the text dirty; after the next frame, once the main
// thread is idle (at most 150 ms later), the text goes to the worker. One render is in flight
// at a time and the next starts when it is back, so a big document is re-rendered as often as
// the worker manages (about once a second for 2 MB) while keystrokes cost nothing extra.
import { storage } from './identity.js'
import { setupViewModes } from './view-modes.js'
import { ID_PREFIX, blockElements, createBlockView } from './preview-dom.js'
import { setupScrollSync } from './scroll-sync.js'
import { countLabel, countText } from './word-count.js'

const IDLE_TIMEOUT_MS = 150
const WORKER_META = 'meta[name="tandem-preview-worker"]'

/** @typedef {import('./markdown.js').Heading} Heading */

/** @param {string} id @return {HTMLElement} */
const $ = (id) => {
  const element = document.getElementById(id)
  if (!element) throw new Error(`editor.html lacks #${id}`)
  return element
}

/**
 * The table of contents: one link per heading, indented by level.
 *
 * @param {HTMLElement} nav
 * @param {Heading[]} headings
 */
const drawToc = (nav, headings) => {
  const list = document.createElement('ol')
  list.className = 'md-toc-list'
  for (const heading of headings) {
    const item = document.createElement('li')
    item.dataset.level = String(heading.level)
    const link = document.createElement('a')
    link.href = `#${heading.id}`
    link.dataset.testid = 'toc-item'
    link.dataset.target = heading.id
    link.textContent = heading.text || '(untitled)'
    item.append(link)
    list.append(item)
  }
  const title = document.createElement('h2')
  title.className = 'md-toc-heading'
  title.textContent = 'Contents'
  nav.replaceChildren(title, headings.length ? list : Object.assign(document.createElement('p'), {
    className: 'md-toc-empty', textContent: 'No headings yet.'
  }))
}

/**
 * @param {object} opts
 * @param {import('yjs').Text} opts.ytext
 * @param {import('@codemirror/view').EditorView} opts.view
 */
export const setupPreview = ({ ytext, view }) => {
  const output = $('md-preview')
  const toc = $('md-toc')
  const count = $('word-count')

  let textVersion = 1 // the text as loaded counts as a change
  let countedVersion = 0
  let renderedVersion = 0
  let sentVersion = 0
  let sentRender = false // whether the last text sent was to be rendered
  let inFlight = 0
  let scheduled = false
  let debounce = true
  let failed = false
  let headingsKey = ''
  /** @type {HTMLElement[] | null} */
  let headingElements = null
  /** The rendered blocks as markdown-it made them (for renderMarkdown). @type {string[]} */
  let htmlBlocks = []
  const stats = { renders: 0, lastRenderMs: 0 }

  const showing = () => modes.mode() !== 'edit'

  const showCounts = (/** @type {{ words: number, characters: number }} */ counts) => {
    count.textContent = countLabel(counts)
    count.dataset.words = String(counts.words)
    count.dataset.characters = String(counts.characters)
  }

  const blocks = createBlockView({
    container: output,
    onApplied: () => {
      headingElements = null
      output.setAttribute('aria-busy', String(blocks.busy()))
      sync.contentChanged()
    }
  })

  /** @type {Worker | null} */
  let worker = null
  try {
    const url = /** @type {HTMLMetaElement | null} */ (document.querySelector(WORKER_META))?.content
    worker = new Worker(url || '/static/preview-worker.js')
  } catch {
    failed = true
  }

  const fail = () => {
    failed = true
    output.dataset.state = 'error'
    output.replaceChildren(Object.assign(document.createElement('p'), {
      className: 'md-preview-error', textContent: 'The preview could not start. Reload the page to try again.'
    }))
    showCounts(countText(ytext.toString()))
  }

  const needsSend = () => textVersion > sentVersion || (showing() && !sentRender)

  const send = () => {
    scheduled = false
    if (failed) {
      countedVersion = textVersion
      showCounts(countText(ytext.toString()))
      return
    }
    if ((debounce && inFlight > 0) || !needsSend() || worker === null) return
    inFlight++
    sentVersion = textVersion
    sentRender = showing()
    worker.postMessage({ seq: textVersion, text: ytext.toString(), render: sentRender })
  }

  const schedule = () => {
    if (!debounce) {
      send()
      return
    }
    if (scheduled) return
    scheduled = true
    // after the frame that shows the keystroke, when the page has nothing else to do
    window.requestAnimationFrame(() => {
      if (typeof window.requestIdleCallback === 'function') window.requestIdleCallback(send, { timeout: IDLE_TIMEOUT_MS })
      else window.setTimeout(send, 0)
    })
  }

  if (worker !== null) {
    worker.onmessage = (/** @type {MessageEvent} */ { data }) => {
      inFlight = Math.max(0, inFlight - 1)
      if (data.error) {
        console.warn('preview: rendering failed', data.error)
      } else {
        countedVersion = Math.max(countedVersion, data.seq)
        showCounts(data.counts)
        if (data.render) {
          renderedVersion = Math.max(renderedVersion, data.seq)
          stats.renders++
          stats.lastRenderMs = Math.round(data.ms)
          output.setAttribute('aria-busy', 'true')
          const { start, removed, blocks: added } = data.render
          htmlBlocks = htmlBlocks.slice(0, start).concat(added, htmlBlocks.slice(start + removed))
          blocks.apply(data.render)
          const key = JSON.stringify(data.render.headings)
          if (key !== headingsKey) {
            headingsKey = key
            drawToc(toc, data.render.headings)
          }
        }
      }
      if (needsSend()) schedule()
    }
    worker.onerror = (event) => {
      event.preventDefault()
      fail()
    }
  }

  /** Scroll the rendered side to the heading (or other element) with this slug. */
  const goTo = (/** @type {string} */ id) => {
    const target = /** @type {HTMLElement | null} */ (output.querySelector(`#${CSS.escape(ID_PREFIX + id)}`))
    if (target === null) return false
    // chunks far away are laid out only when near the screen (preview-dom.js), so the first
    // jump may land a little off: check again once the blocks around it have been laid out
    const align = () => {
      const offset = target.getBoundingClientRect().top - output.getBoundingClientRect().top - 8
      if (Math.abs(offset) > 1) output.scrollTop += offset
    }
    align()
    window.requestAnimationFrame(() => window.requestAnimationFrame(align))
    if (/^H[1-6]$/.test(target.tagName)) {
      target.tabIndex = -1
      target.focus({ preventScroll: true })
    }
    return true
  }

  /** @param {MouseEvent} event */
  const followInDocumentLink = (event) => {
    const link = /** @type {Element} */ (event.target).closest?.('a[href^="#"]')
    if (!link) return
    event.preventDefault()
    const href = link.getAttribute('href') ?? '#'
    let id = href.slice(1)
    try { id = decodeURIComponent(id) } catch {}
    goTo(id)
  }
  output.addEventListener('click', followInDocumentLink)
  toc.addEventListener('click', followInDocumentLink)

  // View mode: the table of contents marks the section at the top of the rendered side
  let tocFrame = 0
  const markCurrentHeading = () => {
    tocFrame = 0
    if (modes.mode() !== 'view') return
    headingElements ??= /** @type {HTMLElement[]} */ ([...output.querySelectorAll('h1, h2, h3, h4, h5, h6')])
    const top = output.getBoundingClientRect().top + 24
    let current = null
    for (const heading of headingElements) {
      if (heading.getBoundingClientRect().top > top) break
      current = heading.id.slice(ID_PREFIX.length)
    }
    for (const link of toc.querySelectorAll('a[data-target]')) {
      if (/** @type {HTMLElement} */ (link).dataset.target === current) link.setAttribute('aria-current', 'location')
      else link.removeAttribute('aria-current')
    }
  }
  output.addEventListener('scroll', () => { if (tocFrame === 0) tocFrame = window.requestAnimationFrame(markCurrentHeading) }, { passive: true })

  const modes = setupViewModes({
    group: $('view-modes'),
    body: document.body,
    storage,
    onChange: (mode) => {
      view.requestMeasure()
      if (mode === 'split') sync.shown()
      if (needsSend()) schedule()
    }
  })
  const sync = setupScrollSync({ view, preview: output, active: () => modes.mode() === 'split' })

  ytext.observe(() => {
    textVersion++
    schedule()
  })
  schedule()

  return {
    /** 'edit' | 'split' | 'view' */
    mode: modes.mode,
    setMode: modes.set,
    /** Whether the preview shows the current text (and is not still putting it in). */
    current: () => !failed && renderedVersion === textVersion && !blocks.busy(),
    /** Whether the word count is of the current text. */
    counted: () => countedVersion === textVersion,
    /**
     * The dialect's HTML of `text` if it is what the preview shows now (Split or View, caught
     * up), else null: the offline web-page export (local-export.js) falls back to plain text.
     */
    renderMarkdown: (/** @type {string} */ text) =>
      renderedVersion === textVersion && text === ytext.toString()
        ? htmlBlocks.join('').replace(/ data-line-offset="\d+"/g, '')
        : null,
    /** For the latency benchmark: false sends every change to the worker at once. */
    setDebounce: (/** @type {boolean} */ on) => { debounce = on },
    stats: () => ({ ...stats, textVersion, renderedVersion, inFlight }),
    /** What the preview would put in the page for this HTML (the sanitizer alone, for tests). */
    sanitized: (/** @type {string} */ html) => blockElements([html]).map((element) => element.outerHTML).join(''),
    editorLine: sync.editorLine,
    previewLine: sync.previewLine,
    goTo
  }
}
