// Unit tests of the Share dialog's logic (share-dialog.js) that needs no browser: which dialog a
// token gets, the scopes and expiries on offer, the request to POST /api/tokens and its errors
// in words (a fake fetch stands in for the server; tests/test_browser_share.py runs the real one).
import { test } from 'node:test'
import assert from 'node:assert/strict'

import {
  EXPIRY_PRESETS, ROLE_CHOICES, createLink, expiryChoices, scopeChoices, scopeWithin, shareErrorMessage,
  shareMode, tokenExpiry
} from '../src/share-dialog.js'
import { ApiError } from '../src/api.js'

/** A JWT-shaped token with this payload (unsigned: the client never verifies). */
const tokenWith = (payload) => {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url')
  return `${part({ alg: 'HS256', typ: 'JWT' })}.${part(payload)}.c2ln`
}

const HOUR = 3600
const DAY = 86_400

test('no token is open mode, an admin token makes links, any other token only shares itself', () => {
  assert.equal(shareMode(null), 'open')
  assert.equal(shareMode(''), 'open')
  assert.equal(shareMode(tokenWith({ doc: 'n', role: 'admin', exp: 1 })), 'admin')
  assert.equal(shareMode(tokenWith({ doc: 'n', role: 'write', exp: 1 })), 'limited')
  assert.equal(shareMode(tokenWith({ doc: 'n', role: 'read', exp: 1 })), 'limited')
  // a token the page cannot read is treated as the least (the server decides anyway)
  assert.equal(shareMode('not-a-jwt'), 'limited')
  assert.equal(shareMode(tokenWith({ doc: 'n', role: 'owner' })), 'limited')
})

test('the page token\'s expiry is its exp, when it is a number', () => {
  assert.equal(tokenExpiry(tokenWith({ exp: 1700000000 })), 1700000000)
  assert.equal(tokenExpiry(tokenWith({ exp: '1700000000' })), null)
  assert.equal(tokenExpiry(tokenWith({})), null)
  assert.equal(tokenExpiry(null), null)
})

test('a scope is within another as the server counts it: same, inside a prefix, or inside *', () => {
  assert.equal(scopeWithin('team/x', 'team/'), true)
  assert.equal(scopeWithin('team/sub/', 'team/'), true)
  assert.equal(scopeWithin('team/', 'team/'), true)
  assert.equal(scopeWithin('anything', '*'), true)
  assert.equal(scopeWithin('*', '*'), true)
  assert.equal(scopeWithin('*', 'team/'), false)
  assert.equal(scopeWithin('team', 'team/'), false)
  assert.equal(scopeWithin('teamx', 'team/'), false)
  assert.equal(scopeWithin('other', 'team/'), false)
  assert.equal(scopeWithin('notes', 'notes'), true)
  assert.equal(scopeWithin('notes/', 'notes'), false)
})

test('the scopes offered: the document, and its folder when the page\'s token covers that folder', () => {
  const admin = (doc) => tokenWith({ doc, role: 'admin', exp: 1 })
  assert.deepEqual(scopeChoices('notes', admin('*')).map((c) => c.value), ['notes'])
  assert.deepEqual(scopeChoices('team/notes', admin('*')).map((c) => c.value), ['team/notes', 'team/'])
  assert.deepEqual(scopeChoices('team/sub/notes', admin('team/')).map((c) => c.value), ['team/sub/notes', 'team/sub/'])
  // a token for the document alone cannot make a link to its folder: not offered
  assert.deepEqual(scopeChoices('team/notes', admin('team/notes')).map((c) => c.value), ['team/notes'])
  assert.deepEqual(scopeChoices('team/sub/notes', admin('team/other/')).map((c) => c.value), ['team/sub/notes'])
  assert.match(scopeChoices('team/notes', admin('*'))[1].label, /team\//)
})

test('the expiries offered never pass the page token\'s own', () => {
  const now = 1_000_000
  assert.deepEqual(expiryChoices(now, null), [...EXPIRY_PRESETS])
  // a year left: every preset
  assert.deepEqual(expiryChoices(now, now + 365 * DAY).map((c) => c.seconds), [HOUR, DAY, 7 * DAY, 30 * DAY])
  // 2 days left: 1 hour, 1 day, and "until this page's link expires"
  const two = expiryChoices(now, now + 2 * DAY)
  assert.deepEqual(two.map((c) => c.seconds), [HOUR, DAY, 2 * DAY])
  assert.match(two[2].label, /expires/)
  // exactly 7 days left: no second choice of the same length
  assert.deepEqual(expiryChoices(now, now + 7 * DAY).map((c) => c.seconds), [HOUR, DAY, 7 * DAY])
  // 10 minutes left: only "until it expires"
  assert.deepEqual(expiryChoices(now, now + 600).map((c) => c.seconds), [600])
  // expired: nothing
  assert.deepEqual(expiryChoices(now, now), [])
  assert.deepEqual(expiryChoices(now, now - 5), [])
  for (const choice of expiryChoices(now + 0.7, now + 3 * DAY + 0.2)) assert.ok(Number.isInteger(choice.seconds))
})

test('the roles offered are the server\'s three', () => {
  assert.deepEqual(ROLE_CHOICES.map((c) => c.value), ['read', 'write', 'admin'])
})

/** A fetch that records its call and answers `status` with `body` (JSON, or text if a string). */
const fakeFetch = (status, body) => {
  const calls = []
  const impl = async (url, init) => {
    calls.push({ url, init })
    const text = typeof body === 'string' ? body : JSON.stringify(body)
    return new Response(text, { status, headers: { 'Content-Type': 'application/json' } })
  }
  return { calls, impl }
}

test('Create link posts the choice with the page\'s token as a bearer and returns the link', async () => {
  const minted = { token: 't.o.k', url: 'http://h/d/n?token=t.o.k', scope: 'n', role: 'read', expires_at: 123 }
  const { calls, impl } = fakeFetch(201, minted)
  const request = { scope: 'team/', role: 'read', ttl: 3600, document: 'team/n' }
  assert.deepEqual(await createLink({ token: 'page.tok.en', request, fetch: impl }), minted)
  assert.equal(calls.length, 1)
  assert.equal(calls[0].url, '/api/tokens')
  assert.equal(calls[0].init.method, 'POST')
  assert.equal(calls[0].init.headers.Authorization, 'Bearer page.tok.en')
  assert.equal(calls[0].init.headers['Content-Type'], 'application/json')
  assert.deepEqual(JSON.parse(calls[0].init.body), request)
})

test('a refusal becomes an ApiError in words, with what the server said', async () => {
  const request = { scope: '*', role: 'admin', ttl: 60 }
  for (const [status, detail, words] of [
    [403, "scope '*' is not within this token's scope 'team/'", /refused.*not within/],
    [401, 'token expired', /not valid any more.*token expired/],
    [409, 'this server runs in open mode', /open mode/],
    [400, 'ttl must be a number of seconds', /did not create the link \(400\).*ttl/]
  ]) {
    const { impl } = fakeFetch(status, { error: detail })
    await assert.rejects(createLink({ token: 'x', request, fetch: impl }), (error) => {
      assert.ok(error instanceof ApiError)
      assert.equal(error.status, status)
      assert.equal(error.detail, detail)
      assert.match(error.message, words)
      return true
    })
  }
  // not JSON (a proxy's page): the status alone
  const { impl } = fakeFetch(502, '<html>bad gateway</html>')
  await assert.rejects(createLink({ token: 'x', request, fetch: impl }), /did not create the link \(502\)\.$/)
  // no server at all
  const offline = async () => { throw new TypeError('Failed to fetch') }
  await assert.rejects(createLink({ token: 'x', request, fetch: offline }), (error) => error.status === 0)
  // a 2xx answer without a link is no success
  const empty = fakeFetch(201, { ok: true })
  await assert.rejects(createLink({ token: 'x', request, fetch: empty.impl }), /holds no link/)
})

test('the error sentences say what happened for each status', () => {
  assert.match(shareErrorMessage(0, ''), /Could not reach the server/)
  assert.match(shareErrorMessage(403, ''), /^The server refused to create this link\.$/)
  assert.match(shareErrorMessage(409, ''), /no access tokens/)
})
