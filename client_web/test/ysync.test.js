// Unit tests of the Y.Text <-> CodeMirror binding (src/ysync.js) on what other Yjs apps put in a
// Y.Text: embeds, formatting attributes, "\r\n". No browser: an EditorState stands in for the
// editor, fed the same transactions the view plugin dispatches.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import { ChangeSet, EditorState } from '@codemirror/state'

import {
  EMBED_PLACEHOLDER, applyLocalChanges, changesOfDelta, editorTextOf, embedPositions,
  remoteChange, safeCollab, textOfDelta
} from '../src/ysync.js'

const P = EMBED_PLACEHOLDER

/** A tiny deterministic PRNG (mulberry32). */
const rng = (seed) => () => {
  seed |= 0
  seed = (seed + 0x6D2B79F5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/**
 * Two peers: `app`, another Yjs app, and `tandem`, whose Y.Text feeds an EditorState exactly
 * as the view plugin does (remote deltas through remoteChange, own edits through
 * applyLocalChanges with the local origin).
 */
const pair = () => {
  const app = new Y.Doc()
  const tandem = new Y.Doc()
  app.on('update', (update, origin) => { if (origin !== 'from-tandem') Y.applyUpdate(tandem, update, 'from-app') })
  tandem.on('update', (update, origin) => { if (origin !== 'from-app') Y.applyUpdate(app, update, 'from-tandem') })
  const ytext = tandem.getText('content')
  const { doc, extensions } = safeCollab(ytext, null, { undoManager: false })
  const editor = { state: EditorState.create({ doc, extensions }) }
  ytext.observe((event, tr) => {
    if (tr.origin === 'local') return
    const spec = remoteChange(event.delta)
    if (spec) editor.state = editor.state.update(spec).state
  })
  /** @param {import('@codemirror/state').ChangeSpec} changes */
  const type = (changes) => {
    const tr = editor.state.update({ changes })
    applyLocalChanges(ytext, tr.changes, 'local')
    editor.state = tr.state
  }
  return { app: app.getText('content'), ytext, editor, type }
}

/** The editor shows the Y.Text: same text with placeholders, embeds drawn at the placeholders. */
const assertInStep = (ytext, state) => {
  const want = editorTextOf(ytext)
  assert.equal(state.doc.length, ytext.length)
  assert.equal(state.doc.toString(), want.text)
  assert.deepEqual(embedPositions(state), want.embeds)
}

test("y-codemirror.next's mapping of an embed gives CodeMirror NaN lengths (the freeze)", () => {
  // what y-sync.js dispatched for the delta op { insert: { image: … } }
  const changes = ChangeSet.of([{ from: 0, to: 0, insert: /** @type {any} */ ({ image: 'x.png' }) }], 0)
  assert.ok(Number.isNaN(changes.newLength))
  // what the safe binding dispatches instead
  assert.deepEqual(changesOfDelta([{ insert: { image: 'x.png' } }]), {
    changes: [{ from: 0, to: 0, insert: P }], embeds: [0]
  })
})

test('deltas become one change per place; embeds count 1, formats 0', () => {
  assert.deepEqual(textOfDelta([{ insert: 'ab', attributes: { bold: true } }, { insert: { image: 1 } }, { insert: 'c' }]),
    { text: `ab${P}c`, embeds: [2] })
  assert.deepEqual(changesOfDelta([{ retain: 2 }, { insert: 'x' }, { insert: { a: 1 } }, { delete: 3 }, { retain: 1, attributes: { bold: true } }, { insert: 'y' }]), {
    changes: [{ from: 2, to: 5, insert: `x${P}` }, { from: 6, to: 6, insert: 'y' }],
    embeds: [3]
  })
  assert.deepEqual(changesOfDelta([{ retain: 4, attributes: { italic: true } }]), { changes: [], embeds: [] })
  assert.equal(remoteChange([{ retain: 4, attributes: { italic: true } }]), null)
})

test('an embed and formatted text from another app: shown as text and one placeholder', () => {
  const { app, ytext, editor, type } = pair()
  app.insert(0, 'hello world')
  app.insertEmbed(5, { image: 'x.png' })
  app.format(0, 5, { bold: true })
  app.insert(app.length, ' more', { italic: true })
  assert.equal(editor.state.doc.toString(), `hello${P} world more`)
  assertInStep(ytext, editor.state)
  // typing right before and right after the embed, and at the end
  type({ from: 5, insert: 'A' })
  type({ from: 7, insert: 'B' })
  type({ from: editor.state.doc.length, insert: '!' })
  assertInStep(ytext, editor.state)
  assert.equal(app.toString(), 'helloAB world more!')
  assert.deepEqual(app.toDelta().map((op) => op.insert), ['helloA', { image: 'x.png' }, 'B world', ' more!'])
  // deleting the placeholder deletes the embed, and the widget with it
  type({ from: 6, to: 7 })
  assertInStep(ytext, editor.state)
  assert.deepEqual(app.toDelta().map((op) => op.insert).join(''), 'helloAB world more!')
  assert.deepEqual(embedPositions(editor.state), [])
})

test('a Y type embedded in the text is a placeholder too', () => {
  const { app, ytext, editor } = pair()
  app.insert(0, 'ab')
  const map = new Y.Map()
  app.insertEmbed(1, map)
  map.set('k', 'v')
  assert.equal(editor.state.doc.toString(), `a${P}b`)
  assertInStep(ytext, editor.state)
})

test('"\\r\\n" and "\\r" keep their length: positions after them stay right', () => {
  const { app, ytext, editor, type } = pair()
  app.insert(0, 'one\r\ntwo\rthree\nfour')
  assertInStep(ytext, editor.state)
  assert.equal(editor.state.doc.lines, 3) // split on "\n" only
  type({ from: 'one\r\ntwo\rthree'.length, insert: '3' })
  assert.equal(app.toString(), 'one\r\ntwo\rthree3\nfour')
})

test('an editor created from a text with embeds shows them', () => {
  const doc = new Y.Doc()
  const ytext = doc.getText('content')
  ytext.insert(0, 'xy')
  ytext.insertEmbed(1, { video: 'v' })
  ytext.insertEmbed(0, { video: 'w' })
  const { doc: text, extensions } = safeCollab(ytext, null, { undoManager: false })
  const state = EditorState.create({ doc: text, extensions })
  assertInStep(ytext, state)
  assert.deepEqual(embedPositions(state), [0, 2])
})

test('random edits from both sides with embeds, formats and line breaks stay in step', () => {
  for (let seed = 1; seed <= 40; seed++) {
    const random = rng(seed)
    const { app, ytext, editor, type } = pair()
    const pick = (/** @type {number} */ n) => Math.floor(random() * n)
    const words = ['a', 'bc', '\n', '\r\n', 'déf', ' ', P]
    for (let step = 0; step < 150; step++) {
      const length = app.length
      const pos = pick(length + 1)
      const kind = pick(8)
      if (kind === 0) app.insertEmbed(pos, { n: step })
      else if (kind === 1 && length > 0) {
        const from = pick(length)
        app.format(from, 1 + pick(length - from), { bold: random() < 0.5 ? true : null })
      } else if (kind === 2) app.insert(pos, words[pick(words.length)], random() < 0.5 ? { italic: true } : undefined)
      else if (kind === 3 && length > 0) {
        const from = pick(length)
        app.delete(from, 1 + pick(Math.min(3, length - from)))
      } else if (kind === 4) {
        // the app changes several places in one transaction
        app.doc?.transact(() => {
          app.insert(pick(app.length + 1), 'T')
          app.insertEmbed(pick(app.length + 1), { t: step })
          if (app.length > 2) app.delete(pick(app.length - 1), 1)
        })
      } else {
        const docLength = editor.state.doc.length
        const from = pick(docLength + 1)
        const to = Math.min(docLength, from + (random() < 0.3 ? pick(3) : 0))
        type({ from, to, insert: random() < 0.8 ? words[pick(words.length - 1)] : '' })
      }
      assertInStep(ytext, editor.state)
    }
    // both Y.Texts agree
    assert.deepEqual(app.toDelta(), ytext.toDelta(), `seed ${seed}`)
  }
})

test('typing over an embed replaces it: the widget goes with it', () => {
  const { app, ytext, editor, type } = pair()
  app.insert(0, 'ab')
  app.insertEmbed(1, { image: 'x.png' })
  type({ from: 1, to: 2, insert: 'X' })
  assertInStep(ytext, editor.state)
  assert.deepEqual(embedPositions(editor.state), [])
  assert.deepEqual(app.toDelta(), [{ insert: 'aXb' }])
})
