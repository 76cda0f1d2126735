// Unit tests of duplicating, deleting and importing documents from the pages: what a token
// allows, the names offered and made of file names, the file checks and the error sentences.
import { test } from 'node:test'
import assert from 'node:assert/strict'

import { ApiError } from '../src/api.js'
import { copyName, deleteDocument, documentPowers, duplicateDocument, duplicateErrorMessage, freeName } from '../src/document-actions.js'
import { IMPORT_MAX_BYTES, decodeText, fileProblem, nameFromFile } from '../src/home-import.js'
import { documentNameProblem } from '../src/protocol.js'

/** A JWT whose payload is `claims` (unsigned: the page only reads it). */
const jwt = (claims) => ['e30', Buffer.from(JSON.stringify(claims)).toString('base64url'), 'sig'].join('.')

test('what a token allows: open mode everything, a reader nothing, a writer copies, an admin deletes', () => {
  assert.deepEqual(documentPowers(null), { canDuplicate: true, canDelete: true, canCreate: true, prefix: '' })
  assert.deepEqual(documentPowers(jwt({ doc: '*', role: 'read' })), { canDuplicate: false, canDelete: false, canCreate: false, prefix: '' })
  assert.deepEqual(documentPowers(jwt({ doc: 'team/', role: 'write' })), { canDuplicate: true, canDelete: false, canCreate: false, prefix: 'team/' })
  assert.deepEqual(documentPowers(jwt({ doc: '*', role: 'admin' })), { canDuplicate: true, canDelete: true, canCreate: true, prefix: '' })
  // a token for one document can make no other one
  assert.deepEqual(documentPowers(jwt({ doc: 'team/notes', role: 'admin' })), { canDuplicate: false, canDelete: true, canCreate: false, prefix: '' })
  assert.equal(documentPowers('not a token').canDuplicate, false)
})

test('the copy is offered "<name>-copy", then the first free "-copy-2"…, within the length limit', () => {
  assert.equal(copyName('notes'), 'notes-copy')
  assert.equal(copyName('notes', ['notes-copy']), 'notes-copy-2')
  assert.equal(copyName('notes', ['notes-copy', 'notes-copy-2']), 'notes-copy-3')
  const long = 'x'.repeat(200)
  assert.equal(copyName(long).length, 200)
  assert.equal(documentNameProblem(copyName(long)), null)
  assert.equal(freeName('a', []), 'a')
  assert.equal(freeName('a', new Set(['a', 'a-2'])), 'a-3')
  assert.equal(freeName('y'.repeat(200), ['y'.repeat(200)]).length, 200)
})

test('file names become valid document names', () => {
  assert.equal(nameFromFile('My Notes.md'), 'My-Notes')
  assert.equal(nameFromFile('Plan Été 2024.markdown'), 'Plan-Ete-2024')
  assert.equal(nameFromFile('README.TXT'), 'README')
  assert.equal(nameFromFile('a..b  c.md'), 'a.b-c')
  assert.equal(nameFromFile('.hidden.md'), 'hidden')
  assert.equal(nameFromFile('日本語.md'), 'imported')
  assert.equal(nameFromFile('notes.md', 'team/'), 'team/notes')
  assert.equal(nameFromFile('<script>alert(1)</script>.md'), 'scriptalert1script')
  const long = nameFromFile('z'.repeat(300) + '.md', 'team/')
  assert.ok(long.length <= 196 && long.startsWith('team/z'))
  for (const name of ['My Notes.md', '---.md', '....txt', 'ü.md', ' .md']) {
    assert.equal(documentNameProblem(nameFromFile(name)), null, name)
  }
})

test('only Markdown and text files of a sensible size are taken', () => {
  assert.equal(fileProblem({ name: 'a.md', size: 10 }), null)
  assert.equal(fileProblem({ name: 'a.MARKDOWN', size: 10 }), null)
  assert.equal(fileProblem({ name: 'a.txt', size: IMPORT_MAX_BYTES }), null)
  assert.match(fileProblem({ name: 'a.pdf', size: 10 }) ?? '', /only \.md, \.markdown and \.txt/)
  assert.match(fileProblem({ name: 'md', size: 10 }) ?? '', /not a Markdown/)
  assert.match(fileProblem({ name: 'a.md', size: IMPORT_MAX_BYTES + 1 }) ?? '', /too big/)
  assert.match(fileProblem({ name: 'a.md', size: 0 }) ?? '', /empty/)
})

test('a file is read as strict UTF-8 text', () => {
  assert.equal(decodeText(new TextEncoder().encode('héllo ✓'), 'a.md'), 'héllo ✓')
  assert.equal(decodeText(new Uint8Array([0xef, 0xbb, 0xbf, 0x61]), 'a.md'), 'a') // BOM dropped
  assert.throws(() => decodeText(new Uint8Array([0x63, 0x61, 0x66, 0xe9]), 'l.txt'), /not UTF-8/)
  assert.throws(() => decodeText(new Uint8Array([0x61, 0x00, 0x62]), 'b.md'), /binary/)
  assert.throws(() => decodeText(new TextEncoder().encode(' \n\t'), 'e.md'), /empty/)
})

test('a refused duplicate says why in words', () => {
  assert.match(duplicateErrorMessage(new ApiError(409, 'x', "document 'b' exists already"), 'b'), /"b" exists already/)
  assert.match(duplicateErrorMessage(new ApiError(409, 'x', "document 'a' is empty: there is nothing to copy"), 'b'), /nothing to copy/)
  assert.match(duplicateErrorMessage(new ApiError(400, 'x', 'bad'), 'a b'), /"a b" cannot be a document name \(bad\)/)
  assert.match(duplicateErrorMessage(new ApiError(403, 'x', ''), 'other/x'), /does not allow/)
  assert.equal(duplicateErrorMessage(new Error('network'), 'b'), 'network')
})

test('the requests: the body, the token, and the server refusal as an ApiError', async () => {
  const seen = []
  const fake = async (url, init) => {
    seen.push({ url, init })
    if (init.method === 'DELETE') return new Response(JSON.stringify({ error: 'this needs the admin role' }), { status: 403 })
    return new Response(JSON.stringify({ name: 'team/copy', url: '/d/team/copy' }), { status: 201 })
  }
  assert.equal(await duplicateDocument({ name: 'team/notes', to: 'team/copy', token: 'T', fetch: fake }), 'team/copy')
  assert.equal(seen[0].url, '/api/docs/team/notes/duplicate')
  assert.equal(seen[0].init.method, 'POST')
  assert.equal(seen[0].init.body, JSON.stringify({ to: 'team/copy' }))
  assert.equal(seen[0].init.headers.Authorization, 'Bearer T')
  await assert.rejects(deleteDocument({ name: 'a b', token: null, fetch: fake }), (error) => {
    assert.equal(error.status, 403)
    assert.equal(error.detail, 'this needs the admin role')
    return true
  })
  assert.equal(seen[1].url, '/api/docs/a%20b')
  assert.equal(seen[1].init.headers.Authorization, undefined)
})
