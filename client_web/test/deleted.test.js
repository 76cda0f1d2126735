// Unit tests of what the editor offers for a document deleted on the server (close code 4410).
import { test } from 'node:test'
import assert from 'node:assert/strict'

import protocol from '../../shared/protocol.json' with { type: 'json' }
import { CLOSE_CODE } from '../src/protocol.js'
import { ApiError, createApi } from '../src/api.js'
import { DELETED_MESSAGE, copyFilename, importErrorMessage, newNameProblem } from '../src/deleted-document.js'

test('the document-deleted close code comes from protocol.json and is final for y-websocket (4400-4499)', () => {
  assert.equal(CLOSE_CODE.documentDeleted, protocol.closeCodes.documentDeleted)
  assert.ok(CLOSE_CODE.documentDeleted >= 4400 && CLOSE_CODE.documentDeleted < 4500)
  assert.match(DELETED_MESSAGE, /deleted on the server/)
  assert.match(DELETED_MESSAGE, /on this device only/)
  assert.doesNotMatch(DELETED_MESSAGE, /does not accept this document name/)
})

test('the copy downloads as Markdown under the last segment of the name', () => {
  assert.equal(copyFilename('notes'), 'notes.md')
  assert.equal(copyFilename('team/plan'), 'plan.md')
  assert.equal(copyFilename('team/plan.md'), 'plan.md')
  assert.equal(copyFilename('READ.MARKDOWN'), 'READ.MARKDOWN')
})

test('the new name follows the document-name rule and is not the deleted one', () => {
  assert.equal(newNameProblem('team/rescued', 'team/notes'), null)
  assert.match(newNameProblem('team/notes', 'team/notes') ?? '', /another name/)
  assert.match(newNameProblem('has space', 'x') ?? '', /no spaces/)
  assert.match(newNameProblem('', 'x') ?? '', /Enter a document name/)
  assert.match(newNameProblem('a/../b', 'x') ?? '', /\.\./)
  assert.match(newNameProblem('/lead', 'x') ?? '', /start or end/)
})

test('a failed import says why and that the copy is still here', () => {
  assert.match(importErrorMessage(new ApiError(409, 'x'), 'taken'), /"taken" already has text/)
  assert.match(importErrorMessage(new ApiError(403, 'x'), 'n'), /Only an admin/)
  assert.match(importErrorMessage(new ApiError(401, 'x'), 'n'), /Only an admin/)
  assert.match(importErrorMessage(new ApiError(0, 'Could not reach the server to create it.'), 'n'), /Could not reach/)
  for (const status of [0, 403, 409, 500]) {
    assert.match(importErrorMessage(new ApiError(status, 'x'), 'n'), /download it/)
  }
})

test('importText posts the text as the body with the token', async () => {
  /** @type {{ url: string, init: any }[]} */
  const calls = []
  const answers = [
    new Response(JSON.stringify({ imported: 'team/rescued', length: 5 }), { status: 201 }),
    new Response(JSON.stringify({ error: "document 'team/rescued' already has content; import needs it empty" }), { status: 409 })
  ]
  const api = createApi({
    name: 'team/rescued',
    token: 'TOKEN',
    fetch: async (url, init) => {
      calls.push({ url: String(url), init })
      return /** @type {Response} */ (answers.shift())
    }
  })
  await api.importText('# héllo\n')
  assert.equal(calls[0].url, '/api/docs/team/rescued/import')
  assert.equal(calls[0].init.method, 'POST')
  assert.equal(calls[0].init.body, '# héllo\n')
  assert.equal(calls[0].init.headers.Authorization, 'Bearer TOKEN')
  assert.match(calls[0].init.headers['Content-Type'], /^text\/markdown/)
  await assert.rejects(api.importText('again'), (error) => error instanceof ApiError && error.status === 409)
})
