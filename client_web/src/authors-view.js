// "Show authors": the text coloured by who wrote it, with a legend (the sidebar, under "People
// here"). Off by default; the choice is remembered in this browser (localStorage).
//
// Who wrote what comes from the Y.Text itself: each of its items carries the Yjs client id that
// made it. The server keeps which author sent each client id's structs (GET …/authors: a token's
// subject, or in open mode the name that person showed); an id the map lacks (just typed, not
// stored yet) has the map fetched again, a few times, more slowly each time, and is shown as
// "Unknown" meanwhile. Positions are those of the editor (ysync.js): a string counts its UTF-16
// length, an embed one placeholder, a format nothing — exactly what `textOfDelta` puts in
// CodeMirror — so the marks cover exactly each author's characters.
//
// Colours: a palette slot per author, by a hash of the name (stable across pages and visits),
// moved on to the next free slot when an earlier author has it; the marks are translucent
// backgrounds with an underline (style.css `.cm-author-N`), readable in both themes. Names are
// only ever set as text or attribute values: never parsed as HTML.
import * as Y from 'yjs'
import { Compartment, RangeSetBuilder, StateEffect } from '@codemirror/state'
import { Decoration, ViewPlugin } from '@codemirror/view'

import { storage } from './identity.js'

/** Where the choice is remembered. */
export const SHOW_AUTHORS_KEY = 'tandem:show-authors'
/** What a client id the map has no author for is shown as. */
export const UNKNOWN_AUTHOR = 'Unknown'
/** How many colours there are (style.css has `.cm-author-0` … `.cm-author-7`). */
export const PALETTE_SIZE = 8
/** Refetches of the map while some client id is unknown: the first delay, the longest, and
 * how many before giving up until another unknown one appears (the server's own edits, text
 * from before the map, never get an author). */
const RETRY_FIRST_MS = 500
const RETRY_MAX_MS = 30_000
const RETRIES = 8

/**
 * @typedef {{ from: number, to: number, client: number }} Run
 *   editor positions [from, to) written by one Yjs client id
 * @typedef {{ from: number, to: number, author: string, known: boolean }} Span
 */

/**
 * The Y.Text's visible content as runs of one client id, in editor positions.
 *
 * @param {Y.Text} ytext
 * @return {Run[]}
 */
export const authorRuns = (ytext) => {
  /** @type {Run[]} */
  const runs = []
  let pos = 0
  for (let item = ytext._start; item !== null; item = item.right) {
    if (item.deleted) continue
    const content = item.content
    let length = 0
    if (content instanceof Y.ContentString) length = content.str.length
    else if (content instanceof Y.ContentEmbed || content instanceof Y.ContentType) length = 1
    if (length === 0) continue // formats (and what the editor does not show)
    const client = item.id.client
    const last = runs[runs.length - 1]
    if (last !== undefined && last.client === client && last.to === pos) last.to += length
    else runs.push({ from: pos, to: pos + length, client })
    pos += length
  }
  return runs
}

/**
 * Runs as spans of one author (adjacent runs of one author's client ids merged).
 *
 * @param {Run[]} runs
 * @param {Map<number, string>} authorOf client id → author
 * @return {Span[]}
 */
export const authorSpans = (runs, authorOf) => {
  /** @type {Span[]} */
  const spans = []
  for (const run of runs) {
    const name = authorOf.get(run.client)
    const author = name ?? UNKNOWN_AUTHOR
    const known = name !== undefined
    const last = spans[spans.length - 1]
    if (last !== undefined && last.to === run.from && last.author === author && last.known === known) last.to = run.to
    else spans.push({ from: run.from, to: run.to, author, known })
  }
  return spans
}

/** @param {string} name @return {number} a 32-bit FNV-1a hash of the name */
export const nameHash = (name) => {
  let hash = 0x811c9dc5
  for (let i = 0; i < name.length; i++) {
    hash ^= name.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}

/**
 * A palette slot per author: its hash's, or the next free one when an author before it (in
 * `authors`' order: oldest first) has that one. Past PALETTE_SIZE authors, slots are shared.
 *
 * @param {string[]} authors distinct names, oldest first
 * @return {Map<string, number>}
 */
export const colorSlots = (authors) => {
  /** @type {Map<string, number>} */
  const slots = new Map()
  const taken = new Set()
  for (const author of authors) {
    let slot = nameHash(author) % PALETTE_SIZE
    if (taken.size < PALETTE_SIZE) {
      while (taken.has(slot)) slot = (slot + 1) % PALETTE_SIZE
    }
    taken.add(slot)
    slots.set(author, slot)
  }
  return slots
}

/**
 * The authors map as the API gives it, checked: client ids → names, and the names oldest first.
 *
 * @param {unknown} rows
 * @return {{ authorOf: Map<number, string>, order: string[] }}
 */
export const readAuthors = (rows) => {
  /** @type {Map<number, string>} */
  const authorOf = new Map()
  /** @type {string[]} */
  const order = []
  for (const row of Array.isArray(rows) ? rows : []) {
    if (row === null || typeof row !== 'object') continue
    const { client_id: client, author } = /** @type {Record<string, unknown>} */ (row)
    if (!Number.isSafeInteger(client) || typeof author !== 'string' || author.trim() === '') continue
    const name = author.replace(/\s+/g, ' ').trim()
    authorOf.set(/** @type {number} */ (client), name)
    if (!order.includes(name)) order.push(name)
  }
  return { authorOf, order }
}

/** Tells the plugin that the map changed (the marks are made again). */
const mapChanged = StateEffect.define()

/**
 * @param {object} opts
 * @param {import('@codemirror/view').EditorView} opts.view
 * @param {Y.Text} opts.ytext
 * @param {{ authors: () => Promise<unknown[]> }} opts.api
 * @param {HTMLInputElement} opts.toggle the "Show authors" checkbox
 * @param {HTMLElement} opts.legend the <ul> of authors and their colours
 */
export const setupAuthorsView = ({ view, ytext, api, toggle, legend }) => {
  /** @type {Map<number, string>} */
  let authorOf = new Map()
  /** @type {Map<string, number>} */
  let slots = new Map()
  /** @type {Map<string, Decoration>} */
  const marks = new Map()
  let on = false
  let fetching = false
  let retryTimer = 0
  let retryDelay = RETRY_FIRST_MS
  let retries = 0
  /** @type {Set<number>} */
  const unknownSeen = new Set()
  let legendKey = ''

  /** @param {Span} span */
  const markOf = (span) => {
    const key = span.known ? span.author : '\u0000unknown'
    let mark = marks.get(key)
    if (mark === undefined) {
      const slot = span.known ? slots.get(span.author) : undefined
      mark = Decoration.mark({
        class: `cm-author ${slot === undefined ? 'cm-author-unknown' : `cm-author-${slot}`}`,
        attributes: { 'data-author': span.author }
      })
      marks.set(key, mark)
    }
    return mark
  }

  /** @param {Span[]} spans */
  const drawLegend = (spans) => {
    /** @type {Map<string, boolean>} */
    const present = new Map()
    for (const span of spans) if (!present.has(span.author) || span.known) present.set(span.author, span.known)
    const entries = [...present].sort(([a, knownA], [b, knownB]) =>
      Number(knownB) - Number(knownA) || a.localeCompare(b))
    const key = JSON.stringify(entries.map(([author, known]) => [author, known, slots.get(author)]))
    if (key === legendKey) return
    legendKey = key
    const items = entries.map(([author, known]) => {
      const li = document.createElement('li')
      li.className = 'author-entry'
      li.dataset.testid = 'author-entry'
      li.dataset.author = author
      const swatch = document.createElement('span')
      const slot = known ? slots.get(author) : undefined
      swatch.className = `author-swatch cm-author ${slot === undefined ? 'cm-author-unknown' : `cm-author-${slot}`}`
      swatch.setAttribute('aria-hidden', 'true')
      const name = document.createElement('span')
      name.className = 'author-name'
      name.textContent = author
      li.append(swatch, name)
      return li
    })
    if (items.length === 0) {
      const li = document.createElement('li')
      li.className = 'author-entry author-none'
      li.textContent = 'No text yet.'
      items.push(li)
    }
    legend.replaceChildren(...items)
  }

  /** @param {Span[]} spans */
  const decorationsOf = (spans) => {
    const builder = new RangeSetBuilder()
    for (const span of spans) builder.add(span.from, span.to, markOf(span))
    return builder.finish()
  }

  const refetchSoon = () => {
    if (retryTimer || fetching || !on || retries >= RETRIES) return
    retries++
    retryTimer = window.setTimeout(() => {
      retryTimer = 0
      fetchMap()
    }, retryDelay)
    retryDelay = Math.min(retryDelay * 2, RETRY_MAX_MS)
  }

  /** @param {Run[]} runs */
  const noteUnknown = (runs) => {
    let fresh = false
    let any = false
    for (const run of runs) {
      if (authorOf.has(run.client)) continue
      any = true
      if (!unknownSeen.has(run.client)) {
        unknownSeen.add(run.client)
        fresh = true
      }
    }
    if (fresh) {
      // someone new: ask soon, whatever the last wait was
      retryDelay = RETRY_FIRST_MS
      retries = 0
      if (retryTimer) {
        window.clearTimeout(retryTimer)
        retryTimer = 0
      }
    }
    if (any) refetchSoon()
  }

  const plugin = ViewPlugin.fromClass(class {
    /** @param {import('@codemirror/view').EditorView} v */
    constructor (v) {
      this.decorations = Decoration.none
      this.build(v)
    }

    /** @param {import('@codemirror/view').EditorView} v */
    build (v) {
      const runs = authorRuns(ytext)
      const end = runs.length === 0 ? 0 : runs[runs.length - 1].to
      // the editor and the Y.Text disagree (ysync.js re-reads it next): keep the marks mapped
      if (end !== v.state.doc.length) return false
      const spans = authorSpans(runs, authorOf)
      this.decorations = decorationsOf(spans)
      drawLegend(spans)
      noteUnknown(runs)
      return true
    }

    /** @param {import('@codemirror/view').ViewUpdate} update */
    update (update) {
      const changed = update.transactions.some((tr) => tr.effects.some((e) => e.is(mapChanged)))
      if (!update.docChanged && !changed) return
      if (!this.build(update.view)) this.decorations = this.decorations.map(update.changes)
    }
  }, { decorations: (value) => value.decorations })

  const compartment = new Compartment()
  view.dispatch({ effects: StateEffect.appendConfig.of(compartment.of([])) })

  const fetchMap = async () => {
    if (fetching || !on) return
    fetching = true
    try {
      const { authorOf: got, order } = readAuthors(await api.authors())
      authorOf = got
      slots = colorSlots(order)
      marks.clear()
      legendKey = ''
      if (on) view.dispatch({ effects: mapChanged.of(null) })
    } catch {
      // offline, or the server refuses: the map stays as it was, asked again later
    } finally {
      fetching = false
    }
    if (on && authorRuns(ytext).some((run) => !authorOf.has(run.client))) refetchSoon()
  }

  /** @param {boolean} next @param {boolean} [remember] */
  const setOn = (next, remember = true) => {
    on = next
    toggle.checked = next
    legend.hidden = !next
    document.body.dataset.showAuthors = String(next)
    if (remember) storage.set(SHOW_AUTHORS_KEY, next ? '1' : '0')
    if (!next) {
      window.clearTimeout(retryTimer)
      retryTimer = 0
      legendKey = ''
      legend.replaceChildren()
    }
    view.dispatch({ effects: compartment.reconfigure(next ? plugin : []) })
    if (next) {
      retryDelay = RETRY_FIRST_MS
      retries = 0
      fetchMap()
    }
  }

  toggle.addEventListener('change', () => setOn(toggle.checked))
  setOn(storage.get(SHOW_AUTHORS_KEY) === '1', false)

  return {
    /** Whether the text is coloured by author now. */
    isOn: () => on,
    /** @param {boolean} next */
    setOn,
    /** The spans shown now (for tests): editor positions and authors. */
    spans: () => authorSpans(authorRuns(ytext), authorOf)
  }
}
