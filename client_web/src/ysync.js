// The binding between the Y.Text `content` and CodeMirror, safe for whatever other Yjs apps put
// in that Y.Text.
//
// y-codemirror.next's own sync plugin (y-sync.js) maps each Y.Text delta op onto a CodeMirror
// change and assumes every `insert` is a string. Other Yjs apps also put embeds
// (Y.Text.insertEmbed: an object, or a Y type, as one item of length 1) and formatting
// attributes (length 0) in a Y.Text. An embed's delta op `{ insert: { … } }` reached CodeMirror
// as `insert: <object>`, which CodeMirror takes for a Text: its `length` is undefined, the
// change set's lengths become NaN, and the view's height map then loops for ever
// (RangeSet.spans stops at `cursor.to > to`, never true when `to` is NaN). Where the state
// update threw instead, the editor's text silently lost step with the Y.Text, so later edits,
// the person's own and everybody else's, landed at the wrong places.
//
// Here:
// - every embed is one placeholder character, U+FFFC, in CodeMirror, so CodeMirror positions are
//   Y.Text indices (an embed counts 1, formats 0) and typing before or after an embed lands
//   where the person sees it. The placeholder is drawn as a small atomic widget (`cm-embed`).
//   Local edits never touch an embed unless the person deletes its placeholder;
// - formatting attributes are ignored: the text is shown plain (and what someone types inherits
//   the attributes around it, as in any rich-text Yjs editor);
// - lines are split on "\n" only (EditorState.lineSeparator), so a "\r\n" or "\r" in the Y.Text
//   is not merged into one line break, which would shift every position after it; pasted text
//   has its line breaks normalised to "\n";
// - after applying a remote change, the lengths are compared; any mismatch, or an error while
//   applying, re-reads the whole Y.Text into the editor instead of letting the two drift.
//
// Remote cursors, awareness and undo are y-codemirror.next's own (yCollab's other parts): they
// read the same ySyncFacet and ySyncAnnotation, and work in Y.Text indices, which are now the
// editor's positions.
import * as Y from 'yjs' // eslint-disable-line no-unused-vars
import { EditorState, Facet, Prec, StateEffect, StateField } from '@codemirror/state'
import { Decoration, EditorView, ViewPlugin, WidgetType } from '@codemirror/view'
import { yCollab, ySync, ySyncAnnotation, ySyncFacet } from 'y-codemirror.next'

/** What stands in CodeMirror for one embed of the Y.Text. */
export const EMBED_PLACEHOLDER = '\uFFFC'

/**
 * A Y.Text delta op (the ops of `event.delta` and of `ytext.toDelta()`).
 * @typedef {{ insert?: unknown, delete?: number, retain?: number, attributes?: object }} DeltaOp
 */

/**
 * The editor's text for a Y.Text delta read from the start: strings as they are, one
 * placeholder for each embed, and where those embeds are.
 *
 * @param {DeltaOp[]} delta
 * @return {{ text: string, embeds: number[] }}
 */
export const textOfDelta = (delta) => {
  /** @type {string[]} */
  const parts = []
  /** @type {number[]} */
  const embeds = []
  let length = 0
  for (const op of delta) {
    if (op.insert === undefined || op.insert === null) continue
    if (typeof op.insert === 'string') {
      parts.push(op.insert)
      length += op.insert.length
    } else {
      embeds.push(length)
      parts.push(EMBED_PLACEHOLDER)
      length += 1
    }
  }
  return { text: parts.join(''), embeds }
}

/**
 * What the editor shows for `ytext`: its text with one placeholder per embed (the Y.Text's
 * length, unlike `ytext.toString()`, which leaves embeds out).
 *
 * @param {Y.Text} ytext
 * @return {{ text: string, embeds: number[] }}
 */
export const editorTextOf = (ytext) => textOfDelta(ytext.toDelta())

/**
 * The CodeMirror change for a Y.Text event's delta: the ops between two retains become one
 * change (deletes and inserts at the same place, in their order); embeds become placeholders.
 *
 * @param {DeltaOp[]} delta
 * @return {{ changes: { from: number, to: number, insert: string }[], embeds: number[] }}
 *   changes in the old document's positions; embeds: placeholder positions in the new document
 */
export const changesOfDelta = (delta) => {
  /** @type {{ from: number, to: number, insert: string }[]} */
  const changes = []
  /** @type {number[]} */
  const embeds = []
  let oldPos = 0 // in the document before the change
  let newPos = 0 // in the document after it
  let from = 0
  let deleted = 0
  /** @type {string[]} */
  let inserted = []
  let open = false
  const flush = () => {
    if (open) changes.push({ from, to: from + deleted, insert: inserted.join('') })
    open = false
    deleted = 0
    inserted = []
  }
  const start = () => {
    if (!open) {
      open = true
      from = oldPos
    }
  }
  for (const op of delta) {
    if (op.insert !== undefined && op.insert !== null) {
      start()
      if (typeof op.insert === 'string') {
        inserted.push(op.insert)
        newPos += op.insert.length
      } else {
        inserted.push(EMBED_PLACEHOLDER)
        embeds.push(newPos)
        newPos += 1
      }
    } else if (typeof op.delete === 'number') {
      start()
      deleted += op.delete
      oldPos += op.delete
    } else if (typeof op.retain === 'number') {
      // a retain with attributes only formats: nothing to show
      flush()
      oldPos += op.retain
      newPos += op.retain
    }
  }
  flush()
  return { changes: changes.filter((c) => c.from !== c.to || c.insert !== ''), embeds }
}

class EmbedWidget extends WidgetType {
  eq (/** @type {WidgetType} */ other) { return other instanceof EmbedWidget }

  toDOM () {
    const span = document.createElement('span')
    span.className = 'cm-embed'
    span.dataset.testid = 'embed'
    span.setAttribute('role', 'img')
    span.setAttribute('aria-label', 'embedded object')
    span.title = 'Something another app embedded here. Tandem keeps it but cannot show or edit it.'
    span.textContent = '◆'
    return span
  }

  ignoreEvent () { return false }
}

const embedDecoration = Decoration.replace({ widget: new EmbedWidget() })

/** @param {number[]} positions */
const embedRanges = (positions) => positions.map((pos) => embedDecoration.range(pos, pos + 1))

/** Placeholders (new-document positions) that are embeds. */
const addEmbeds = StateEffect.define()
/** Every embed of the document, replacing what was known. */
const setEmbeds = StateEffect.define()

/** Where the embeds of the initial document are. */
const initialEmbeds = Facet.define({ combine: (values) => values[0] ?? [] })

const embedField = StateField.define({
  create: (state) => Decoration.set(embedRanges(state.facet(initialEmbeds))),
  update (embeds, tr) {
    let next = embeds
    if (tr.docChanged) {
      // a deleted placeholder takes its decoration along (mapping alone would keep it over the
      // text that replaced it)
      tr.changes.iterChangedRanges((fromA, toA) => {
        if (toA > fromA) {
          next = next.update({ filterFrom: fromA, filterTo: toA, filter: (from, to) => from < fromA || to > toA })
        }
      })
      next = next.map(tr.changes)
    }
    for (const effect of tr.effects) {
      if (effect.is(setEmbeds)) next = Decoration.set(embedRanges(effect.value))
      else if (effect.is(addEmbeds)) next = next.update({ add: embedRanges(effect.value), sort: true })
    }
    return next
  },
  provide: (field) => [
    // above highlightSpecialChars, which would draw U+FFFC as a control character
    Prec.highest(EditorView.decorations.from(field)),
    EditorView.atomicRanges.of((view) => view.state.field(field))
  ]
})

/**
 * The editor transaction (changes and embed effects) for a remote Y.Text delta; null when it
 * changes nothing the editor shows (formatting only).
 *
 * @param {DeltaOp[]} delta
 * @return {import('@codemirror/state').TransactionSpec | null}
 */
export const remoteChange = (delta) => {
  const { changes, embeds } = changesOfDelta(delta)
  if (changes.length === 0) return null
  return { changes, effects: embeds.length > 0 ? [addEmbeds.of(embeds)] : [] }
}

/**
 * Apply the editor's own changes to the Y.Text, in one transaction with `origin`
 * (y-codemirror.next's: the undo manager tracks exactly that origin).
 *
 * @param {Y.Text} ytext
 * @param {import('@codemirror/state').ChangeSet} changes
 * @param {unknown} origin
 */
export const applyLocalChanges = (ytext, changes, origin) => {
  ytext.doc?.transact(() => {
    // fromA is a position before the change; adj makes it one in the Y.Text as it is edited
    let adj = 0
    changes.iterChanges((fromA, toA, _fromB, _toB, insert) => {
      const insertText = insert.sliceString(0, insert.length, '\n')
      if (fromA !== toA) ytext.delete(fromA + adj, toA - fromA)
      if (insertText.length > 0) ytext.insert(fromA + adj, insertText)
      adj += insertText.length - (toA - fromA)
    })
  }, origin)
}

/**
 * Where the editor draws embeds (for tests).
 *
 * @param {EditorState} state
 * @return {number[]}
 */
export const embedPositions = (state) => {
  /** @type {number[]} */
  const positions = []
  const field = state.field(embedField, false)
  field?.between(0, state.doc.length, (from) => { positions.push(from) })
  return positions
}

/**
 * The editor → Y.Text and Y.Text → editor sync, y-codemirror.next's YSyncPluginValue with embeds
 * as placeholders and a full re-read when the two ever disagree.
 */
class SafeSyncPluginValue {
  /** @param {EditorView} view */
  constructor (view) {
    this.view = view
    this.conf = view.state.facet(ySyncFacet)
    /** @type {Y.Text} */
    this.ytext = this.conf.ytext
    this.destroyed = false
    this.resyncQueued = false
    this._observer = (/** @type {Y.YTextEvent} */ event, /** @type {Y.Transaction} */ tr) => {
      if (tr.origin === this.conf) return // our own edit, already in the editor
      this.applyRemote(event.delta)
    }
    this.ytext.observe(this._observer)
    if (view.state.doc.length !== this.ytext.length) this.queueResync('the editor was created with another text')
  }

  /** @param {DeltaOp[]} delta */
  applyRemote (delta) {
    try {
      const spec = remoteChange(delta)
      if (spec === null) return // formatting only
      this.view.dispatch({ ...spec, annotations: [ySyncAnnotation.of(this.conf)] })
    } catch (error) {
      console.warn('Tandem: could not apply a change to the editor', error)
      this.queueResync('a change could not be applied')
      return
    }
    if (this.view.state.doc.length !== this.ytext.length) this.queueResync('the lengths differ')
  }

  /** Re-read the whole Y.Text on the next microtask (never inside an editor update). */
  queueResync (/** @type {string} */ why) {
    if (this.resyncQueued || this.destroyed) return
    console.warn(`Tandem: re-reading the text into the editor (${why})`)
    this.resyncQueued = true
    queueMicrotask(() => {
      this.resyncQueued = false
      if (!this.destroyed) this.resync()
    })
  }

  resync () {
    const { text, embeds } = editorTextOf(this.ytext)
    const doc = this.view.state.doc.toString()
    // only the part that differs, so the selection around it stays where it was
    let start = 0
    const shortest = Math.min(doc.length, text.length)
    while (start < shortest && doc.charCodeAt(start) === text.charCodeAt(start)) start++
    let endDoc = doc.length
    let endText = text.length
    while (endDoc > start && endText > start && doc.charCodeAt(endDoc - 1) === text.charCodeAt(endText - 1)) {
      endDoc--
      endText--
    }
    this.view.dispatch({
      changes: start === endDoc && start === endText ? [] : [{ from: start, to: endDoc, insert: text.slice(start, endText) }],
      effects: [setEmbeds.of(embeds)],
      annotations: [ySyncAnnotation.of(this.conf)]
    })
  }

  /** @param {import('@codemirror/view').ViewUpdate} update */
  update (update) {
    if (!update.docChanged || (update.transactions.length > 0 && update.transactions[0].annotation(ySyncAnnotation) === this.conf)) {
      return
    }
    const ytext = this.ytext
    applyLocalChanges(ytext, update.changes, this.conf)
    if (update.state.doc.length !== ytext.length) this.queueResync('a local edit did not fit the text')
  }

  destroy () {
    this.destroyed = true
    this.ytext.unobserve(this._observer)
  }
}

export const safeSync = ViewPlugin.fromClass(SafeSyncPluginValue)

const embedTheme = EditorView.baseTheme({
  '.cm-embed': {
    display: 'inline-block',
    padding: '0 0.25em',
    margin: '0 1px',
    borderRadius: '3px',
    fontSize: '0.8em',
    lineHeight: '1.3',
    verticalAlign: 'baseline',
    color: '#5b6470',
    backgroundColor: '#e8ebef',
    border: '1px solid #c9ced6',
    cursor: 'default',
    userSelect: 'none'
  }
})

/**
 * yCollab with the sync plugin replaced by the safe one. The rest (remote cursors and their
 * labels, the undo plugin and its keys, the facet and annotation) is y-codemirror.next's.
 *
 * @param {Y.Text} ytext
 * @param {import('y-protocols/awareness').Awareness} awareness
 * @param {{ undoManager: Y.UndoManager }} opts
 * @return {{ doc: string, extensions: import('@codemirror/state').Extension }} the text to
 *   create the editor with (embeds as placeholders), and the extensions
 */
export const safeCollab = (ytext, awareness, { undoManager }) => {
  const { text, embeds } = editorTextOf(ytext)
  let replaced = 0
  /** @param {import('@codemirror/state').Extension} extension */
  const swap = (extension) => {
    if (extension === ySync) {
      replaced++
      return safeSync
    }
    return Array.isArray(extension) ? extension.map(swap) : extension
  }
  const collab = swap(yCollab(ytext, awareness, { undoManager }))
  if (replaced !== 1) throw new Error(`y-codemirror.next's yCollab has changed: found its sync plugin ${replaced} times`)
  return {
    doc: text,
    extensions: [
      EditorState.lineSeparator.of('\n'),
      EditorView.clipboardInputFilter.of((input) => input.replace(/\r\n?/g, '\n')),
      // a copied embed is not an embed any more: leave the placeholder out
      EditorView.clipboardOutputFilter.of((output) => output.split(EMBED_PLACEHOLDER).join('')),
      initialEmbeds.of(embeds),
      embedField,
      embedTheme,
      collab
    ]
  }
}
