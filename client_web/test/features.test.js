// Unit tests of the logic behind Export, History, read-only mode and safe names (no browser).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'

import { AUTH_MESSAGE, MESSAGE, documentApiPath } from '../src/protocol.js'
import { accessFor, readAuthMessage, roleOfToken, tokenPayload } from '../src/access.js'
import { parseUnifiedDiff, diffSummary } from '../src/diff.js'
import { ApiError, apiErrorMessage, createApi, filenameFromDisposition, EXPORT_FORMATS } from '../src/api.js'
import { formatSize, relativeTime } from '../src/format.js'
import { sanitizeUser, sanitizeAwareness, MAX_SHOWN_NAME } from '../src/participants.js'
import { versionTitle } from '../src/history-panel.js'

/** @param {object} payload */
const jwt = (payload) => {
  const part = (/** @type {object} */ o) => Buffer.from(JSON.stringify(o)).toString('base64url')
  return `${part({ alg: 'HS256', typ: 'JWT' })}.${part(payload)}.c2lnbmF0dXJl`
}

test('the role comes from the token payload; no token is open mode', () => {
  assert.equal(roleOfToken(null), 'open')
  assert.equal(roleOfToken(''), 'open')
  assert.equal(roleOfToken(jwt({ doc: 'a', role: 'read', exp: 1 })), 'read')
  assert.equal(roleOfToken(jwt({ doc: 'a', role: 'write', exp: 1 })), 'write')
  assert.equal(roleOfToken(jwt({ doc: 'a', role: 'admin', exp: 1 })), 'admin')
  // unreadable or unknown: the least, the server decides the rest
  assert.equal(roleOfToken('not-a-token'), 'read')
  assert.equal(roleOfToken(jwt({ doc: 'a', role: 'owner' })), 'read')
  assert.equal(roleOfToken('a.!!!.c'), 'read')
  // base64url with characters that differ from base64, and UTF-8
  const payload = { doc: 'team/é~?>', role: 'write', note: '\u{1F600}>>>???' }
  assert.deepEqual(tokenPayload(jwt(payload)), payload)
  assert.equal(tokenPayload(`a.${Buffer.from('[1]').toString('base64url')}.c`), null)
})

test('what each role may do', () => {
  assert.deepEqual(accessFor('open'), { role: 'open', denied: false, canEdit: true, readOnly: false, canSaveVersion: true, canRestore: true })
  assert.deepEqual(accessFor('admin'), { role: 'admin', denied: false, canEdit: true, readOnly: false, canSaveVersion: true, canRestore: true })
  assert.deepEqual(accessFor('write'), { role: 'write', denied: false, canEdit: true, readOnly: false, canSaveVersion: true, canRestore: false })
  assert.deepEqual(accessFor('read'), { role: 'read', denied: false, canEdit: false, readOnly: true, canSaveVersion: false, canRestore: false })
  // the server's "permission denied" wins over the token
  for (const role of /** @type {const} */ (['open', 'write', 'admin'])) {
    const a = accessFor(role, true)
    assert.equal(a.readOnly, true)
    assert.equal(a.canSaveVersion, false)
    assert.equal(a.canRestore, false)
  }
})

test("the auth message's permission denied is read with its reason", () => {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MESSAGE.auth)
  encoding.writeVarUint(encoder, AUTH_MESSAGE.permissionDenied)
  encoding.writeVarString(encoder, 'read-only: edits are not applied')
  const decoder = decoding.createDecoder(encoding.toUint8Array(encoder))
  assert.equal(decoding.readVarUint(decoder), MESSAGE.auth)
  assert.deepEqual(readAuthMessage(decoder), { denied: true, reason: 'read-only: edits are not applied' })

  const other = encoding.createEncoder()
  encoding.writeVarUint(other, 7)
  assert.deepEqual(readAuthMessage(decoding.createDecoder(encoding.toUint8Array(other))), { denied: false, reason: '' })
})

test('unified diffs: header only before the first hunk, + and - counted', () => {
  const diff = [
    '--- notes (version 3)',
    '+++ notes (live)',
    '@@ -1,3 +1,3 @@',
    ' same',
    '-old line',
    '---- a removed line that starts with dashes',
    '+new line',
    '++++ added, starting with pluses',
    '\\ No newline at end of file',
    ''
  ].join('\n')
  const { lines, added, removed } = parseUnifiedDiff(diff)
  assert.deepEqual(lines.map((l) => l.kind), ['file', 'file', 'hunk', 'context', 'del', 'del', 'add', 'add', 'note'])
  assert.equal(added, 2)
  assert.equal(removed, 2)
  assert.deepEqual(parseUnifiedDiff(''), { lines: [], added: 0, removed: 0 })
  assert.equal(diffSummary(0, 0), 'No changes')
  assert.equal(diffSummary(1, 0), '1 line added')
  assert.equal(diffSummary(0, 3), '3 lines removed')
  assert.equal(diffSummary(2, 1), '2 lines added, 1 removed')
})

test('API paths, file names and readable errors', () => {
  assert.equal(documentApiPath('team/notes', '/export'), '/api/docs/team/notes/export')
  assert.equal(documentApiPath('a b/c?d'), '/api/docs/a%20b/c%3Fd')
  assert.equal(filenameFromDisposition('attachment; filename="notes.md"'), 'notes.md')
  assert.equal(filenameFromDisposition("attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.txt"), 'résumé.txt')
  assert.equal(filenameFromDisposition('attachment; filename="../../etc/passwd"'), 'passwd')
  assert.equal(filenameFromDisposition('attachment'), null)
  assert.equal(filenameFromDisposition(null), null)
  assert.deepEqual(EXPORT_FORMATS.map((f) => f.format), ['md', 'txt', 'html', 'json', 'yjs'])
  assert.match(apiErrorMessage(403, 'this needs the admin role; the token has write', 'restore version 2'),
    /^You are not allowed to restore version 2 \(the server said: this needs the admin role; the token has write\)\.$/)
  assert.match(apiErrorMessage(401, '', 'save a version'), /token/)
  assert.match(apiErrorMessage(404, "document 'x' has no version 9"), /no version 9/)
  assert.match(apiErrorMessage(409, 'has text'), /conflicts/)
  assert.match(apiErrorMessage(0, ''), /reach the server/)
})

test('the API client sends the token as a Bearer header and turns errors into ApiError', async () => {
  /** @type {{ url: string, init: any }[]} */
  const calls = []
  /** @param {number} status @param {string} body @param {Record<string, string>} [headers] */
  const reply = (status, body, headers = {}) => new Response(body, { status, headers })
  const answers = [
    reply(200, JSON.stringify([{ id: 1, created_at: 10, label: null, size_bytes: 5, auto: true }, { id: 7, number: 2, created_at: 20, label: 'Draft', size_bytes: 9, auto: false }])),
    reply(201, JSON.stringify({ id: 8, number: 3 })),
    reply(403, JSON.stringify({ error: 'this needs the admin role; the token has write' })),
    reply(200, 'hello', { 'Content-Disposition': 'attachment; filename="team-notes.md"' })
  ]
  const api = createApi({
    name: 'team/notes',
    token: 'TOKEN',
    fetch: async (url, init) => {
      calls.push({ url: String(url), init })
      return /** @type {Response} */ (answers.shift())
    }
  })
  const versions = await api.versions()
  assert.deepEqual(versions.map((v) => v.id), [7, 1]) // newest first
  // the number people see: the server's per-document number, else the id
  assert.deepEqual(versions.map((v) => v.number), [2, 1])
  assert.deepEqual(await api.saveVersion('Before review'), { id: 8, number: 3 })
  await assert.rejects(api.restore(2), (error) => {
    assert.ok(error instanceof ApiError)
    assert.equal(error.status, 403)
    assert.match(error.message, /not allowed to restore version 2/)
    return true
  })
  const file = await api.exportFile('md')
  assert.equal(file.filename, 'team-notes.md')
  assert.equal(await file.blob.text(), 'hello')

  assert.equal(calls[0].url, '/api/docs/team/notes/versions')
  assert.equal(calls[1].init.method, 'POST')
  assert.equal(calls[1].init.body, JSON.stringify({ label: 'Before review' }))
  assert.equal(calls[2].url, '/api/docs/team/notes/versions/2/restore')
  assert.equal(calls[3].url, '/api/docs/team/notes/export?format=md')
  for (const call of calls) assert.equal(call.init.headers.Authorization, 'Bearer TOKEN')

  const open = createApi({ name: 'n', fetch: async (_url, init) => { calls.push({ url: '', init }); throw new TypeError('Failed to fetch') } })
  await assert.rejects(open.versionText(1), (error) => error instanceof ApiError && error.status === 0)
  assert.equal(calls.at(-1)?.init.headers.Authorization, undefined)
})

test('versions are titled by label, else by kind; sizes and times read well', () => {
  assert.equal(versionTitle({ label: 'Sent to Bob', auto: false }), 'Sent to Bob')
  assert.equal(versionTitle({ label: null, auto: true }), 'Automatic')
  assert.equal(versionTitle({ label: null, auto: false }), 'Saved version')
  assert.equal(formatSize(0), '0 B')
  assert.equal(formatSize(999), '999 B')
  assert.equal(formatSize(1234), '1.2 kB')
  assert.equal(formatSize(45_600), '46 kB')
  assert.equal(formatSize(3_400_000), '3.4 MB')
  const now = 1_700_000_000_000
  assert.equal(relativeTime(now / 1000 - 10, now), 'just now')
  assert.equal(relativeTime(now / 1000 - 300, now), '5 minutes ago')
  assert.equal(relativeTime(now / 1000 - 86_400, now), 'yesterday')
})

test('remote users are sanitised: names stay text, colours stay colours', () => {
  assert.deepEqual(sanitizeUser({ name: '<img src=x onerror=alert(1)>', color: '#1d4ed8', colorLight: '#1d4ed833', id: 'abc' }),
    { name: '<img src=x onerror=alert(1)>', color: '#1d4ed8', colorLight: '#1d4ed833', id: 'abc' })
  const bad = sanitizeUser({ name: { toString: () => 'x' }, color: 'red; position: fixed; inset: 0', colorLight: 'url(//evil)' })
  assert.equal(bad.name, 'Anonymous')
  assert.match(bad.color, /^#[0-9a-f]{6}$/)
  assert.match(bad.colorLight, /^#[0-9a-f]{8}$/)
  assert.equal(sanitizeUser({ name: 'x'.repeat(500) }).name.length, MAX_SHOWN_NAME)
  assert.equal(sanitizeUser({ name: '  a \n  b ' }).name, 'a b')
  assert.equal(sanitizeUser(null).name, 'Anonymous')
  assert.equal(sanitizeUser({ name: 'v', readOnly: true }).readOnly, true)

  const clean = { name: 'Ada', color: '#1d4ed8ff', colorLight: '#1d4ed833', id: 'p1' }
  const dirty = { name: 'Eve', color: 'red;background:url(x)', colorLight: '#fff' }
  const states = new Map([[1, { user: clean }], [2, { user: dirty }], [3, {}], [9, { user: { name: '<b>me</b>', color: 'bad' } }]])
  const awareness = /** @type {any} */ ({ clientID: 9, getStates: () => states })
  sanitizeAwareness(awareness, [1, 2, 3, 9])
  assert.equal(states.get(1)?.user, clean) // untouched: already clean (no extra change events)
  assert.deepEqual(states.get(2)?.user, { name: 'Eve', color: '#6b7280', colorLight: '#fff' })
  assert.deepEqual(states.get(3), {})
  assert.equal(states.get(9)?.user?.color, 'bad') // our own state is ours
})
