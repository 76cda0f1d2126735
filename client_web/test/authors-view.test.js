// Unit tests of "Show authors" (src/authors-view.js) and the history panel's "Edited by": who
// wrote which editor positions, read from the Y.Text's items, must match the editor's text
// exactly (embeds one placeholder, formats nothing), and colours must be stable and distinct.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'

import {
  UNKNOWN_AUTHOR, PALETTE_SIZE, authorRuns, authorSpans, colorSlots, nameHash, readAuthors
} from '../src/authors-view.js'
import { editedBy } from '../src/history-panel.js'
import { editorTextOf } from '../src/ysync.js'

/** Two peers with fixed client ids, kept in sync. */
const peers = () => {
  const ada = new Y.Doc()
  ada.clientID = 1
  const bob = new Y.Doc()
  bob.clientID = 2
  ada.on('update', (update, origin) => { if (origin !== 'bob') Y.applyUpdate(bob, update, 'ada') })
  bob.on('update', (update, origin) => { if (origin !== 'ada') Y.applyUpdate(ada, update, 'bob') })
  return { ada: ada.getText('content'), bob: bob.getText('content') }
}

/** The text of each run, as the editor shows it. */
const texts = (ytext) => {
  const { text } = editorTextOf(ytext)
  return authorRuns(ytext).map((run) => [run.client, text.slice(run.from, run.to)])
}

test('runs follow the items of each client id, in editor positions', () => {
  const { ada, bob } = peers()
  ada.insert(0, 'Hello ')
  bob.insert(6, 'world')
  ada.insert(11, '!')
  bob.delete(0, 1)
  bob.insert(0, 'J')
  assert.deepEqual(texts(ada), [[2, 'J'], [1, 'ello '], [2, 'world'], [1, '!']])
  assert.deepEqual(texts(bob), texts(ada))
  // runs of one client id typed in several steps are one run
  ada.insert(12, '!!')
  assert.deepEqual(texts(ada).at(-1), [1, '!!!'])
})

test('an embed counts one position, a format none, astral characters two', () => {
  const { ada, bob } = peers()
  ada.insert(0, 'a😀b')
  bob.insertEmbed(4, { image: 'x' })
  bob.format(0, 2, { bold: true })
  ada.insert(5, 'c')
  const runs = authorRuns(ada)
  assert.equal(runs.at(-1).to, editorTextOf(ada).text.length)
  assert.deepEqual(runs, [
    { from: 0, to: 4, client: 1 },
    { from: 4, to: 5, client: 2 },
    { from: 5, to: 6, client: 1 }
  ])
})

test('spans merge one author across client ids and mark the unknown', () => {
  const runs = [
    { from: 0, to: 3, client: 1 },
    { from: 3, to: 5, client: 3 },
    { from: 5, to: 8, client: 2 },
    { from: 8, to: 9, client: 9 }
  ]
  const authorOf = new Map([[1, 'Ada'], [3, 'Ada'], [2, 'Bob']])
  assert.deepEqual(authorSpans(runs, authorOf), [
    { from: 0, to: 5, author: 'Ada', known: true },
    { from: 5, to: 8, author: 'Bob', known: true },
    { from: 8, to: 9, author: UNKNOWN_AUTHOR, known: false }
  ])
  // someone really named "Unknown" is still told apart from an unknown client id
  const named = authorSpans([{ from: 0, to: 1, client: 5 }, { from: 1, to: 2, client: 6 }], new Map([[5, UNKNOWN_AUTHOR]]))
  assert.equal(named.length, 2)
})

test('colour slots are stable by name and distinct while the palette lasts', () => {
  const names = Array.from({ length: PALETTE_SIZE }, (_, i) => `Person ${i}`)
  const slots = colorSlots(names)
  assert.equal(new Set(slots.values()).size, PALETTE_SIZE)
  assert.equal(colorSlots(['Ada']).get('Ada'), nameHash('Ada') % PALETTE_SIZE)
  // an older author keeps its slot when others come
  assert.equal(colorSlots(['Ada', 'Bob', 'Cy']).get('Ada'), colorSlots(['Ada']).get('Ada'))
  assert.equal(colorSlots([...names, 'One more']).size, PALETTE_SIZE + 1)
})

test('the map from the server is checked before it is used', () => {
  const { authorOf, order } = readAuthors([
    { client_id: 7, author: 'Bob' },
    { client_id: 3, author: '  Ada \n Lovelace ' },
    { client_id: 8, author: 'Bob' },
    { client_id: '9', author: 'Mallory' },
    { client_id: 10, author: '' },
    { client_id: 11 },
    null,
    'junk'
  ])
  assert.deepEqual([...authorOf], [[7, 'Bob'], [3, 'Ada Lovelace'], [8, 'Bob']])
  assert.deepEqual(order, ['Bob', 'Ada Lovelace'])
  assert.equal(readAuthors({ not: 'a list' }).authorOf.size, 0)
})

test('"Edited by" names each author once, unknown ones last', () => {
  assert.equal(editedBy([]), '')
  assert.equal(editedBy([{ author: 'Ada' }, { author: 'Bob' }, { author: 'Ada' }]), 'Edited by Ada, Bob')
  assert.equal(editedBy([{ author: 'Bob' }, { author: 'Ada' }]), 'Edited by Ada, Bob')
  assert.equal(editedBy([{ author: null }]), 'Edited by an unknown author')
  assert.equal(editedBy([{ author: 'Ada' }, { author: null }, { author: null }]), 'Edited by Ada and someone unknown')
})
