import { describe, expect, it } from 'vitest';
import { BertWordPieceTokenizer } from '../../../helpers/bert-reference.ts';

const vocabList = [
  '[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]',
  'hello', 'world', 'un', '##aff', '##able', 'play', '##ing', '##s', 'cafe', 'naive',
  ',', '!', '$', '—', '5', '##5', '東', '京', 'Hello',
];
const vocab = Object.fromEntries(vocabList.map((t, i) => [t, i]));
const id = (t: string): number => vocabList.indexOf(t);

function tokenizer(normalizer: Record<string, unknown> = { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true }): BertWordPieceTokenizer {
  return new BertWordPieceTokenizer({
    normalizer,
    pre_tokenizer: { type: 'BertPreTokenizer' },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  });
}

describe('BertNormalizer behaviour', () => {
  const tok = tokenizer();

  it('lowercases, strips accents (strip_accents null follows lowercase), maps whitespace and drops control characters', () => {
    expect(tok.normalize('Héllo\tWORLD\n\u0000naïve\u200bCafé\r')).toBe('hello world naivecafe ');
  });

  it('puts spaces around CJK ideographs', () => {
    expect(tok.normalize('東京')).toBe(' 東  京 ');
  });

  it('keeps case and accents for a cased normalizer', () => {
    const cased = tokenizer({ type: 'BertNormalizer', lowercase: false, strip_accents: null });
    expect(cased.normalize('Héllo')).toBe('Héllo');
    expect(cased.encodeWords('Hello world')).toEqual([id('Hello'), id('world')]);
  });
});

describe('BertPreTokenizer behaviour', () => {
  const tok = tokenizer();

  it('splits on whitespace and isolates each punctuation character, ASCII symbols included', () => {
    expect(tok.preTokenize('hello,  world!!$5—x')).toEqual(['hello', ',', 'world', '!', '!', '$', '5', '—', 'x']);
  });

  it('keeps letters and digits of one word together', () => {
    expect(tok.preTokenize('abc123 x')).toEqual(['abc123', 'x']);
  });
});

describe('WordPiece', () => {
  const tok = tokenizer();

  it('matches the longest piece first and continues with ## pieces', () => {
    expect(tok.wordPiece('unaffable')).toEqual(['un', '##aff', '##able']);
    expect(tok.wordPiece('playing')).toEqual(['play', '##ing']);
    expect(tok.wordPiece('plays')).toEqual(['play', '##s']);
  });

  it('turns a word with an unmatchable rest into one [UNK]', () => {
    expect(tok.wordPiece('playx')).toEqual(['[UNK]']);
    expect(tok.wordPiece('xyz')).toEqual(['[UNK]']);
  });

  it('turns words longer than max_input_chars_per_word into [UNK]', () => {
    expect(tok.wordPiece('5'.repeat(100))).toEqual(['5', ...Array<string>(99).fill('##5')]);
    expect(tok.wordPiece('5'.repeat(101))).toEqual(['[UNK]']);
  });

  it('encodes a sentence as [CLS] pieces [SEP]', () => {
    expect(tok.encode('Hello, wörld! Playing 東京')).toEqual([
      id('[CLS]'), id('hello'), id(','), id('world'), id('!'), id('play'), id('##ing'), id('東'), id('京'), id('[SEP]'),
    ]);
  });
});
