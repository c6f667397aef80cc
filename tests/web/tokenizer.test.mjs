// The sentencepiece tokenizer, the prompt limits and the unknown words, against Python.
import assert from "node:assert/strict";
import { test } from "node:test";
import { PromptError, SentencePiece, checkPrompt, loadTokenizer, promptIds, unknownWords } from "../../artgen/app/web_assets/tokenizer.mjs";
import { fixtures, skip } from "./fixtures.mjs";

test("token ids equal the runtime's (sentencepiece, lower-cased, BOS/EOS) or its error", { skip }, () => {
  const tok = new SentencePiece(fixtures.tokenizer.spec);
  for (const c of fixtures.tokenizer.cases) {
    if (c.error) {
      assert.throws(() => promptIds(tok, c.prompt), (e) => e instanceof PromptError && e.message === c.error, c.prompt);
    } else {
      assert.deepEqual(promptIds(tok, c.prompt), c.ids, JSON.stringify(c.prompt));
    }
  }
});

test("check_prompt accepts and refuses the prompts the runtime does, with its message", { skip }, () => {
  for (const c of fixtures.check_prompt) {
    if (c.error) assert.throws(() => checkPrompt(c.prompt, fixtures.limits), { message: c.error }, c.prompt);
    else assert.doesNotThrow(() => checkPrompt(c.prompt, fixtures.limits), c.prompt);
  }
});

test("unknown words are parse_prompt's", { skip }, () => {
  for (const c of fixtures.unknown) assert.deepEqual(unknownWords(c.prompt, fixtures.words), c.unknown, c.prompt);
});

test("a tokenizer the page does not implement is named", () => {
  assert.throws(() => loadTokenizer({ kind: "tokenizers" }), /cannot tokenize for a tokenizers bundle/);
});
