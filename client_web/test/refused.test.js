// Unit tests of what the editor does with a refused token (no browser): which refusal it is,
// what the page says, and the checks of a pasted link.
import { test } from 'node:test'
import assert from 'node:assert/strict'

import { CLOSE_CODE } from '../src/protocol.js'
import {
  KEPT_NOTE, REFUSED_HEADING, REFUSED_TEXT, parseNewLink, refusalKind, scopeCovers, withToken
} from '../src/refused-access.js'
import { indicatorsOf } from '../src/indicators.js'
import { readOnlyReason } from '../src/read-only.js'
import { SAVE_TEXT } from '../src/save-tracker.js'
import { connectionState } from '../src/connection-status.js'
import { refusesToken } from '../src/connection.js'

/** @param {object} payload @return {string} an unsigned JWT-shaped token with that payload */
const tokenOf = (payload) => {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url')
  return `${part({ alg: 'HS256', typ: 'JWT' })}.${part(payload)}.c2lnbmF0dXJl`
}

const NOW = 1_700_000_000_000
const future = Math.floor(NOW / 1000) + 3600
const past = Math.floor(NOW / 1000) - 10
const BASE = 'http://127.0.0.1:8000/d/team/notes?token=old'

test('a 4401 is told apart: expired, missing or not valid; a 4403 is no access; others are not about the token', () => {
  const live = tokenOf({ doc: 'team/notes', role: 'write', exp: future })
  const old = tokenOf({ doc: 'team/notes', role: 'write', exp: past })
  const unauthorized = (reason) => ({ code: CLOSE_CODE.unauthorized, reason })
  assert.equal(refusalKind(unauthorized('token expired'), live, NOW), 'expired')
  // the server's reason may be cut or missing: the token's own exp says it too
  assert.equal(refusalKind(unauthorized(''), old, NOW), 'expired')
  assert.equal(refusalKind(unauthorized('invalid token: Signature verification failed'), live, NOW), 'invalid')
  assert.equal(refusalKind(unauthorized('a token is required'), null, NOW), 'missing')
  assert.equal(refusalKind(unauthorized('a token is required'), '', NOW), 'missing')
  assert.equal(refusalKind(unauthorized('invalid token'), 'garbage', NOW), 'invalid')
  assert.equal(refusalKind({ code: CLOSE_CODE.forbidden, reason: "this token is not for document 'x'" }, live, NOW), 'forbidden')
  assert.equal(refusalKind({ code: CLOSE_CODE.documentDeleted, reason: '' }, live, NOW), null)
  assert.equal(refusalKind({ code: CLOSE_CODE.badDocumentName, reason: '' }, live, NOW), null)

  assert.equal(refusesToken({ code: CLOSE_CODE.unauthorized, reason: '' }), true)
  assert.equal(refusesToken({ code: CLOSE_CODE.forbidden, reason: '' }), true)
  assert.equal(refusesToken({ code: CLOSE_CODE.documentDeleted, reason: '' }), false)
  assert.equal(refusesToken(null), false)

  for (const kind of ['expired', 'missing', 'invalid', 'forbidden']) {
    assert.equal(typeof REFUSED_TEXT[kind], 'string', kind)
    assert.equal(typeof REFUSED_HEADING[kind], 'string', kind)
  }
  assert.match(REFUSED_TEXT.expired, /^Your link has expired/)
  assert.match(REFUSED_TEXT.forbidden, /^This link does not give access to this document/)
  assert.match(KEPT_NOTE, /kept on this device/)
})

test('a pasted link or token is checked before the page reloads with it', () => {
  const name = 'team/notes'
  const good = tokenOf({ doc: name, role: 'write', exp: future })
  const opts = { name, base: BASE, current: 'old', now: NOW }
  assert.deepEqual(parseNewLink(`http://127.0.0.1:8000/d/team/notes?token=${good}`, opts), { token: good })
  assert.deepEqual(parseNewLink(`  ${good}\n`, opts), { token: good })
  assert.deepEqual(parseNewLink(`token=${good}`, opts), { token: good })
  assert.deepEqual(parseNewLink(`/d/team/notes?token=${good}`, opts), { token: good })
  // another host with the same document: only its token is taken
  assert.deepEqual(parseNewLink(`https://tandem.example/d/team/notes?token=${good}#x`, opts), { token: good })
  // a token for a prefix, or for everything, covers the document
  const prefix = tokenOf({ doc: 'team/', role: 'read', exp: future })
  assert.deepEqual(parseNewLink(prefix, opts), { token: prefix })
  const all = tokenOf({ doc: '*', role: 'admin', exp: future })
  assert.deepEqual(parseNewLink(all, opts), { token: all })

  const problem = (input, more = {}) => {
    const parsed = parseNewLink(input, { ...opts, ...more })
    assert.ok('problem' in parsed, `${input} was accepted`)
    return parsed.problem
  }
  assert.match(problem(''), /Paste a link/)
  assert.match(problem('   '), /Paste a link/)
  const elsewhere = tokenOf({ doc: 'elsewhere', role: 'write', exp: future })
  assert.match(problem(`http://127.0.0.1:8000/d/elsewhere?token=${elsewhere}`), /for another document \("elsewhere"\)/)
  // the address is this document's, but the token is another's
  assert.match(problem(`http://127.0.0.1:8000/d/team/notes?token=${elsewhere}`), /for another document \("elsewhere"\)/)
  assert.match(problem(elsewhere), /for another document/)
  assert.match(problem(tokenOf({ doc: 'other/', role: 'write', exp: future })), /documents under "other\/"/)
  assert.match(problem(tokenOf({ doc: 'team/notes', role: 'write', exp: past })), /expired too/)
  assert.match(problem(good, { current: good }), /just refused/)
  assert.match(problem('http://127.0.0.1:8000/d/team/notes'), /no token/)
  assert.match(problem('http://127.0.0.1:8000/'), /does not open a document/)
  assert.match(problem('javascript:alert(1)'), /does not open a document/)
  assert.match(problem('http://[bad'), /not a link/)
  assert.match(problem('hello world'), /neither a link nor a token/)
  assert.match(problem('a.b'), /neither a link nor a token/)
  assert.match(problem('aaa.%%%.bbb'), /neither a link nor a token/)
  assert.match(problem('aaa.bbb.ccc'), /cannot be read/)
  assert.match(problem(tokenOf({ role: 'write', exp: future })), /names no document/)
  // a long name is shortened in the message
  const long = 'x'.repeat(150)
  assert.ok(problem(tokenOf({ doc: long, role: 'write', exp: future })).length < 150)
})

test('a token covers what the server says it does', () => {
  assert.equal(scopeCovers('*', 'a/b'), true)
  assert.equal(scopeCovers('team/', 'team/notes'), true)
  assert.equal(scopeCovers('team/', 'team'), false)
  assert.equal(scopeCovers('team/', 'teams/x'), false)
  assert.equal(scopeCovers('a', 'a'), true)
  assert.equal(scopeCovers('a', 'ab'), false)
})

test('the page reloads with the new token in place of the old, the rest of the address kept', () => {
  assert.equal(withToken(BASE, 'a.b.c'), 'http://127.0.0.1:8000/d/team/notes?token=a.b.c')
  assert.equal(withToken('http://h/d/n', 'a.b.c'), 'http://h/d/n?token=a.b.c')
  assert.equal(withToken('http://h/d/n?x=1&token=t#top', 'a&b'), 'http://h/d/n?x=1&token=a%26b#top')
})

test('a refused token: read-only, said in the banner, and the save status never says saved', () => {
  const facts = { socketOpen: false, browserOnline: true, failures: 1, refused: true, accessRefused: true, everOpened: true }
  const base = {
    connection: facts,
    refusal: { code: CLOSE_CODE.unauthorized, reason: 'token expired' },
    deleted: false,
    readOnly: true,
    save: { state: 'local', text: SAVE_TEXT.local }
  }
  assert.equal(connectionState(facts), 'refused')
  assert.deepEqual(indicatorsOf({ ...base, accessRefusal: 'expired', pending: 2 }), {
    connection: 'refused',
    save: { state: 'refused', text: '2 unsaved changes — not saved: access refused' },
    detail: { text: REFUSED_TEXT.expired, kind: 'error' }
  })
  assert.equal(indicatorsOf({ ...base, accessRefusal: 'forbidden', pending: 1 }).save.text,
    '1 unsaved change — not saved: access refused')
  assert.equal(indicatorsOf({ ...base, accessRefusal: 'invalid', pending: 0 }).save.text, 'No unsaved changes')
  assert.equal(indicatorsOf({ ...base, accessRefusal: 'forbidden' }).detail.text, REFUSED_TEXT.forbidden)
  // a deleted document's panel still says it all
  assert.equal(indicatorsOf({ ...base, deleted: true, accessRefusal: 'expired' }).detail, null)

  assert.match(readOnlyReason({ deleted: false, refused: 'expired', denied: false, role: 'write' }), /expired/)
  assert.match(readOnlyReason({ deleted: false, refused: 'forbidden', denied: false, role: 'write' }), /refused this link/)
  assert.match(readOnlyReason({ deleted: true, refused: 'expired', denied: false, role: 'write' }), /deleted/)
})
