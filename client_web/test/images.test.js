import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  IMAGE_TYPES, OFFLINE_MESSAGE, altText, imageMarkdown, imagesIn, uploadErrorMessage, uploadImage, withToken
} from '../src/images.js'

const ID = 'AbCdEfGhIjKlMnOpQrStUv'
const ORIGIN = 'http://127.0.0.1:8000'

/** A DataTransfer as far as imagesIn reads one. */
const transfer = (files, text = '') => ({ files, getData: (type) => (type === 'text/plain' ? text : '') })

test('only the five image types are taken, and a paste with text pastes the text', () => {
  const png = { name: 'shot.png', type: 'image/png' }
  const pdf = { name: 'doc.pdf', type: 'application/pdf' }
  const svg = { name: 'logo.svg', type: 'image/svg+xml' }
  assert.deepEqual(imagesIn(transfer([png, pdf, svg])), [png, svg])
  assert.deepEqual(imagesIn(transfer([png], 'A1\tB1'), { paste: true }), [])
  assert.deepEqual(imagesIn(transfer([png], 'A1\tB1')), [png]) // a drop: the files
  assert.deepEqual(imagesIn(transfer([png], '  '), { paste: true }), [png])
  assert.deepEqual(imagesIn(null), [])
  assert.equal(IMAGE_TYPES.length, 5)
})

test('the Markdown names the image by its file name, safely', () => {
  assert.equal(imageMarkdown('Screenshot 2024.png', `/api/docs/a/files/${ID}`), `![Screenshot 2024](/api/docs/a/files/${ID})`)
  assert.equal(altText('we[ir]d\\name\n.jpeg'), 'we ir d name')
  assert.equal(altText('.png'), 'image')
  assert.equal(altText(''), 'image')
})

test('the token goes on this server\'s file addresses only, once', () => {
  const path = `/api/docs/team/notes/files/${ID}`
  assert.equal(withToken(path, 'T', ORIGIN), `${path}?token=T`)
  assert.equal(withToken(`${ORIGIN}${path}`, 'T', ORIGIN), `${path}?token=T`)
  assert.equal(withToken(`${path}?token=T`, 'T', ORIGIN), `${path}?token=T`)
  assert.equal(withToken(path, null, ORIGIN), path)
  assert.equal(withToken(`https://elsewhere.example${path}`, 'T', ORIGIN), `https://elsewhere.example${path}`)
  assert.equal(withToken('/static/favicon.svg', 'T', ORIGIN), '/static/favicon.svg')
  assert.equal(withToken('/api/docs/a/files/short', 'T', ORIGIN), '/api/docs/a/files/short')
})

test('failed uploads read as sentences', () => {
  assert.equal(uploadErrorMessage(0, ''), OFFLINE_MESSAGE)
  assert.match(uploadErrorMessage(413, 'the file is larger than 10 bytes'), /too large.*larger than 10 bytes/)
  assert.match(uploadErrorMessage(415, 'not an image'), /Only PNG, JPEG, GIF, WebP and SVG/)
  assert.match(uploadErrorMessage(403, 'this needs the write role'), /not allowed to add an image/)
})

test('an upload posts the bytes with the token, and says where the image is', async () => {
  const calls = []
  const fetch = async (url, init) => {
    calls.push({ url, init })
    return { ok: true, status: 201, json: async () => ({ url: `/api/docs/a/b/files/${ID}` }) }
  }
  const file = { name: 'x.png', type: 'image/png' }
  assert.equal(await uploadImage({ name: 'a/b', token: 'T', file, fetch }), `/api/docs/a/b/files/${ID}`)
  assert.equal(calls[0].url, '/api/docs/a/b/files')
  assert.equal(calls[0].init.method, 'POST')
  assert.equal(calls[0].init.body, file)
  assert.equal(calls[0].init.headers.Authorization, 'Bearer T')
  assert.equal(calls[0].init.headers['Content-Type'], 'image/png')

  const refused = async () => ({ ok: false, status: 415, json: async () => ({ error: 'the file is not a PNG' }) })
  await assert.rejects(uploadImage({ name: 'a', token: null, file, fetch: refused }), /Only PNG.*not a PNG/)
  const down = async () => { throw new TypeError('Failed to fetch') }
  await assert.rejects(uploadImage({ name: 'a', token: null, file, fetch: down }), { message: OFFLINE_MESSAGE })
  const odd = async () => ({ ok: true, status: 201, json: async () => ({ url: 'javascript:alert(1)' }) })
  await assert.rejects(uploadImage({ name: 'a', token: null, file, fetch: odd }), /did not say where/)
})
