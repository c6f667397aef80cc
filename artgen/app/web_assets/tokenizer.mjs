// The prompt side of export/runtime.py in JavaScript: the sentencepiece unigram tokenizer
// (the model's precompiled normaliser, then Viterbi segmentation, as sentencepiece's
// normalizer.cc and unigram_model.cc EncodeOptimized do it), the runtime's prompt limits
// (check_prompt) and artgen's reading of the words (artgen/data/vocabulary.py parse_prompt) to name
// the ones outside the vocabulary. `artgen web` writes the tokenizer and word lists as JSON.

export class PromptError extends Error {}

const UNK_PENALTY = 10.0; // sentencepiece kUnkPenalty
const SPACE = "\u2581"; // "▁", sentencepiece's escaped whitespace

// Piece types of sentencepiece's ModelProto.
const NORMAL = 1, USER_DEFINED = 4, UNUSED = 5;

function base64Bytes(text) {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The length in bytes of the UTF-8 character starting at bytes[i] (1 for a malformed byte). */
function utf8Length(bytes, i) {
  const b = bytes[i];
  const n = b < 0x80 ? 1 : (b >> 5) === 6 ? 2 : (b >> 4) === 14 ? 3 : (b >> 3) === 30 ? 4 : 1;
  if (i + n > bytes.length) return 1;
  for (let k = 1; k < n; k++) if ((bytes[i + k] & 0xc0) !== 0x80) return 1;
  return n;
}

/** sentencepiece's precompiled character map: a Darts double-array trie of UTF-8 byte
 *  strings, each leaf naming a NUL-terminated replacement in the blob after it. */
class CharsMap {
  constructor(blob) {
    const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    const trieSize = view.getUint32(0, true);
    this.units = new Uint32Array(trieSize / 4);
    for (let i = 0; i < this.units.length; i++) this.units[i] = view.getUint32(4 + 4 * i, true);
    this.strings = blob.subarray(4 + trieSize);
  }

  /** [replacement bytes, bytes consumed] for the longest key that prefixes bytes[pos:]. */
  longestPrefix(bytes, pos) {
    const u = this.units;
    const offset = (unit) => (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
    let node = 0, unit = u[0], bestLen = 0, bestValue = 0;
    node ^= offset(unit);
    for (let i = pos; i < bytes.length; i++) {
      const c = bytes[i];
      node ^= c;
      unit = u[node];
      if (((unit & 0x800000ff) >>> 0) !== c) break; // label: the byte, never a leaf's bit 31
      node ^= offset(unit);
      if ((unit >>> 8) & 1) { bestLen = i + 1 - pos; bestValue = u[node] & 0x7fffffff; }
    }
    if (!bestLen) return null;
    let end = bestValue;
    while (this.strings[end] !== 0) end++;
    return [this.strings.subarray(bestValue, end), bestLen];
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** sentencepiece unigram tokenizer from the JSON `artgen web` writes (pieces, scores, normaliser). */
export class SentencePiece {
  constructor(spec) {
    this.spec = spec;
    const n = spec.normalizer;
    this.addDummyPrefix = n.add_dummy_prefix;
    this.removeExtraWhitespaces = n.remove_extra_whitespaces;
    this.escapeWhitespaces = n.escape_whitespaces;
    this.charsMap = n.charsmap ? new CharsMap(base64Bytes(n.charsmap)) : null;
    this.unkId = spec.unk_id;
    this.pieces = new Map(); // piece -> [id, score]
    this.maxPieceChars = 1;
    let min = Infinity, max = -Infinity;
    spec.pieces.forEach(([piece, score, type], id) => {
      if (type === NORMAL) { min = Math.min(min, score); max = Math.max(max, score); }
      if (type === NORMAL || type === USER_DEFINED || type === UNUSED) {
        this.pieces.set(piece, [id, score, type]);
        this.maxPieceChars = Math.max(this.maxPieceChars, [...piece].length);
      }
    });
    this.unkScore = Math.fround(min - UNK_PENALTY);
    this.maxScore = max;
  }

  /** One normalised prefix of bytes[pos:]: [replacement bytes, bytes consumed]. */
  normalizePrefix(bytes, pos) {
    const hit = this.charsMap && this.charsMap.longestPrefix(bytes, pos);
    if (hit) return hit;
    const n = utf8Length(bytes, pos);
    return [bytes.subarray(pos, pos + n), n];
  }

  /** The text as sentencepiece normalises it: mapped characters, spaces squeezed, "▁" for space. */
  normalize(text) {
    const bytes = encoder.encode(text);
    let pos = 0;
    if (this.removeExtraWhitespaces) {
      while (pos < bytes.length) {
        const [sp, used] = this.normalizePrefix(bytes, pos);
        if (!(sp.length === 1 && sp[0] === 0x20)) break;
        pos += used;
      }
    }
    if (pos >= bytes.length) return "";
    const out = [];
    const space = this.escapeWhitespaces ? [...encoder.encode(SPACE)] : [0x20];
    if (this.addDummyPrefix) out.push(...space);
    let prevSpace = this.removeExtraWhitespaces;
    while (pos < bytes.length) {
      const [sp, used] = this.normalizePrefix(bytes, pos);
      let start = 0;
      while (prevSpace && start < sp.length && sp[start] === 0x20) start++;
      if (start < sp.length) {
        for (let k = start; k < sp.length; k++) {
          if (this.escapeWhitespaces && sp[k] === 0x20) out.push(...space);
          else out.push(sp[k]);
        }
        prevSpace = sp[sp.length - 1] === 0x20;
      }
      pos += used;
    }
    let s = decoder.decode(new Uint8Array(out));
    const tail = this.escapeWhitespaces ? SPACE : " ";
    if (this.removeExtraWhitespaces) while (s.endsWith(tail)) s = s.slice(0, -tail.length);
    return s;
  }

  /** Piece ids of a text (no BOS/EOS): the best-scoring segmentation, float32 sums as in C++,
   *  one unknown id per run of characters no piece covers. */
  encode(text) {
    const chars = [...this.normalize(text)];
    const size = chars.length;
    const best = Array.from({ length: size + 1 }, () => ({ id: -1, score: 0, start: -1 }));
    for (let start = 0; start < size; start++) {
      const before = best[start].score;
      let single = false;
      let key = "";
      for (let end = start + 1; end <= Math.min(size, start + this.maxPieceChars); end++) {
        key += chars[end - 1];
        const hit = this.pieces.get(key);
        if (!hit || hit[2] === UNUSED) continue;
        const [id, score, type] = hit;
        const gain = type === USER_DEFINED ? encoder.encode(key).length * this.maxScore - 0.1 : score;
        const total = Math.fround(Math.fround(gain) + before);
        const node = best[end];
        if (node.start === -1 || total > node.score) { node.score = total; node.start = start; node.id = id; }
        if (end === start + 1) single = true;
      }
      if (!single) {
        const total = Math.fround(this.unkScore + before);
        const node = best[start + 1];
        if (node.start === -1 || total > node.score) { node.score = total; node.start = start; node.id = this.unkId; }
      }
    }
    const ids = [];
    for (let end = size; end > 0; end = best[end].start) ids.push(best[end].id);
    ids.reverse();
    return ids.filter((id, i) => !(id === this.unkId && ids[i - 1] === this.unkId));
  }
}

/** The bundle's tokenizer for the page, or an error naming why this page cannot run it. */
export function loadTokenizer(spec) {
  if (spec.kind === "sentencepiece-unigram") return new SentencePiece(spec);
  throw new PromptError(`this page cannot tokenize for a ${spec.kind} bundle yet: use the Python runtime ` +
                        "(python -m export.runtime) or a tiny-encoder bundle");
}

/** [BOS, ids..., EOS] of a prompt as export/runtime.py's _Tokenizer makes them (lower-cased). */
export function promptIds(tokenizer, prompt) {
  const s = tokenizer.spec;
  const ids = [s.bos_id, ...tokenizer.encode(prompt.toLowerCase()), s.eos_id];
  if (ids.length > s.max_tokens) {
    throw new PromptError(`the prompt ${pyRepr([...prompt].slice(0, 40).join(""))} is ${ids.length} tokens long ` +
                          `(limit ${s.max_tokens}): use 3-5 adjectives`);
  }
  return ids;
}

function pyRepr(s) {
  return s.includes("'") && !s.includes('"') ? `"${s}"` : `'${s.replace(/'/g, "\\'")}'`;
}

/** export/runtime.py check_prompt: not empty, whole characters, words in it, not over-long. */
export function checkPrompt(prompt, limits) {
  if (typeof prompt !== "string" || !prompt.trim()) {
    throw new PromptError('the prompt is empty: give a few adjectives, e.g. "warm, chaotic, vivid"');
  }
  // half an emoji cut by a UTF-16 substring: TextEncoder would turn it into U+FFFD, and no tokenizer takes it
  let at = 0; // in code points, as Python counts; the string iterator yields a lone surrogate alone
  for (const ch of prompt) {
    const unit = ch.charCodeAt(0);
    if (ch.length === 1 && unit >= 0xd800 && unit <= 0xdfff) {
      throw new PromptError(`the prompt is not valid Unicode text (a lone surrogate '\\u${unit.toString(16)}' ` +
                            `at character ${at}, e.g. half an emoji or a byte that is not UTF-8): send whole characters`);
    }
    at += 1;
  }
  if (!/[\p{L}\p{N}_]/u.test(prompt)) { // Python's \w: only punctuation, symbols or emoji hold no words
    throw new PromptError(`the prompt ${pyRepr([...prompt].slice(0, 40).join(""))} holds no words: ` +
                          'give a few adjectives, e.g. "warm, chaotic, vivid"');
  }
  const chars = [...prompt].length;
  if (chars > limits.max_chars) {
    throw new PromptError(`the prompt is ${chars} characters long (limit ${limits.max_chars}): use 3-5 adjectives`);
  }
  const words = prompt.toLowerCase().split(/[,;/|+\s]+/u).filter((w) => w.replace(/^[.!?'"()]+|[.!?'"()]+$/g, ""));
  if (words.length > limits.max_words) {
    throw new PromptError(`the prompt has ${words.length} words (limit ${limits.max_words}): use 3-5 adjectives`);
  }
}

/** The prompt's words outside artgen's vocabulary, its synonyms and its stop words, in order
 *  (parse_prompt's `unknown`): the model reads them as sub-words it may never have seen. */
export function unknownWords(prompt, words) {
  const known = new Set([...words.vocabulary, ...Object.keys(words.synonyms), ...words.stopwords]);
  return prompt.toLowerCase().split(/[,;/|+]|\s+/u)
    .map((t) => t.replace(/^[^\p{L}\p{N}_]+|[^\p{L}\p{N}_]+$/gu, ""))
    .filter((w) => w && !known.has(w));
}
