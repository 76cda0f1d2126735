// Unit tests of the preview's pure parts: the dialect's link rule and slugs, the block split,
// the word count, the scroll sync's search and the stored mode.
import { test } from 'node:test'
import assert from 'node:assert/strict'

import { createMarkdown, isSafeLink, renderBlocks, slugify, uniqueSlug } from '../src/markdown.js'
import { countLabel, countText } from '../src/word-count.js'
import { lastAtOrBefore } from '../src/scroll-sync.js'
import { modeOf } from '../src/view-modes.js'

test('links: http(s), mailto and relative only', () => {
  for (const url of ['https://a.example', 'HTTP://A.EXAMPLE', 'mailto:a@b.example', 'other', '../up', '#x', '/root', 'jav%09ascript:x']) {
    assert.equal(isSafeLink(url), true, url)
  }
  for (const url of ['javascript:alert(1)', ' JavaScript:x', 'vbscript:x', 'data:text/html,x', 'data:image/png;base64,AA', 'file:///etc/passwd', 'ftp://x']) {
    assert.equal(isSafeLink(url), false, url)
  }
})

test('heading slugs are GitHub-like and unique', () => {
  assert.equal(slugify('Hello, World!'), 'hello-world')
  assert.equal(slugify('Ünïcödé & “quotes” — dash'), 'ünïcödé--quotes--dash')
  assert.equal(slugify('snake_case stays'), 'snake_case-stays')
  const seen = new Map()
  assert.deepEqual(['A', 'A', 'A-1', 'A', '!!!', '???'].map((text) => uniqueSlug(text, seen)),
    ['a', 'a-1', 'a-1-1', 'a-2', 'section', 'section-1'])
})

test('blocks: one per top-level element, with their first lines and relative inner lines', () => {
  const md = createMarkdown({ lineOffsets: true })
  const { blocks, lines, headings } = renderBlocks(md, '# A\n\n- x\n- y\n\n  more\n\ntext\n')
  assert.equal(blocks.length, 3)
  assert.deepEqual([...lines], [1, 3, 8])
  assert.match(blocks[0], /^<h1 id="a">A<\/h1>/)
  assert.match(blocks[1], /<li data-line-offset="1">/)
  assert.doesNotMatch(blocks.join(''), /data-source-line/) // the page sets those
  assert.deepEqual(headings, [{ level: 1, text: 'A', id: 'a', line: 1 }])
})

test('raw HTML is text and fences keep a language class', () => {
  const md = createMarkdown()
  assert.equal(md.render('<b onclick="x()">hi</b>'), '<p>&lt;b onclick=&quot;x()&quot;&gt;hi&lt;/b&gt;</p>\n')
  assert.match(md.render('```python\nx = 1\n```'), /<code class="language-python">x = <span class="hljs-number">1<\/span>/)
  assert.match(md.render('[x](https://a.example)'), /target="_blank" rel="noopener noreferrer"/)
})

test('words are runs with a letter or digit; characters are code points without line breaks', () => {
  assert.deepEqual(countText(''), { words: 0, characters: 0 })
  assert.deepEqual(countText('# Hello **world**\n- [ ] a-b | 42'), { words: 4, characters: 31 })
  assert.deepEqual(countText('日本語 ok 😀\r\n'), { words: 4, characters: 8 })
  assert.equal(countLabel({ words: 1, characters: 1 }), '1 word · 1 character')
  assert.equal(countLabel({ words: 12345, characters: 0 }), '12,345 words · 0 characters')
})

test('scroll sync searches the last position at or before a target', () => {
  const keys = [1, 3, 3, 7, 10]
  assert.equal(lastAtOrBefore(keys.length, (i) => keys[i], 0), -1)
  assert.equal(lastAtOrBefore(keys.length, (i) => keys[i], 3), 2)
  assert.equal(lastAtOrBefore(keys.length, (i) => keys[i], 8.5), 3)
  assert.equal(lastAtOrBefore(keys.length, (i) => keys[i], 99), 4)
})

test('an unknown stored mode means Edit', () => {
  assert.equal(modeOf('split'), 'split')
  assert.equal(modeOf('view'), 'view')
  assert.equal(modeOf(null), 'edit')
  assert.equal(modeOf('bogus'), 'edit')
})
