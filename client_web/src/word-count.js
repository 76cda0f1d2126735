// The status bar's word and character count of the document text (pure).
//
// A word is a run of non-space characters holding a letter or a digit, so Markdown marks ("#",
// "-", "|", "**") are not words and "**bold**" is one; each Chinese or Japanese character is a
// word of its own, as those scripts put no spaces between words. Characters are Unicode code
// points (an emoji is one), line breaks not counted.

const CJK = '\\p{Script=Han}\\p{Script=Hiragana}\\p{Script=Katakana}'
const WORDS = new RegExp(`[${CJK}]|[^\\s${CJK}]+`, 'gu')
const HAS_LETTER = /[\p{L}\p{N}]/u
const LINE_BREAK = /\r\n?|\n/g
const ASTRAL = /[\uD800-\uDBFF][\uDC00-\uDFFF]/g

/** @param {string} text @return {{ words: number, characters: number }} */
export const countText = (text) => {
  let words = 0
  for (const match of text.matchAll(WORDS)) if (HAS_LETTER.test(match[0])) words++
  let breaks = 0
  for (const match of text.matchAll(LINE_BREAK)) breaks += match[0].length
  const astral = text.match(ASTRAL)?.length ?? 0
  return { words, characters: text.length - breaks - astral }
}

const NUMBER = new Intl.NumberFormat('en')

/** "1 word · 12 characters" @param {{ words: number, characters: number }} counts */
export const countLabel = ({ words, characters }) =>
  `${NUMBER.format(words)} ${words === 1 ? 'word' : 'words'} · ` +
  `${NUMBER.format(characters)} ${characters === 1 ? 'character' : 'characters'}`
