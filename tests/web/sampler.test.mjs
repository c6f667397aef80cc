// The generator's per-position pick (top-k, Gumbel-max at a temperature, the argmax below
// MIN_TEMPERATURE) and its temperature rule against export/runtime.py pick_codes and check_temperature.
import assert from "node:assert/strict";
import { test } from "node:test";
import { MIN_TEMPERATURE, checkTemperature, pickCode, promptWords } from "../../artgen/app/web_assets/generator.mjs";
import { fixtures, skip } from "./fixtures.mjs";

test("MIN_TEMPERATURE and the temperature rule equal the runtime's", { skip }, () => {
  assert.equal(MIN_TEMPERATURE, fixtures.sampler.min_temperature);
  for (const c of fixtures.sampler.temperatures) assert.equal(checkTemperature(c.temperature), c.resolved, `temperature ${c.temperature}`);
});

test("pickCode picks the runtime's code, vanishing temperatures the argmax", { skip }, () => {
  const { K, logits, noise } = fixtures.sampler;
  for (const c of fixtures.sampler.picks) {
    const got = [];
    for (let b = 0; b < logits.length / K; b++) {
      got.push(pickCode(Float32Array.from(logits.slice(b * K, (b + 1) * K)), Float32Array.from(noise.slice(b * K, (b + 1) * K)),
        c.temperature, c.top_k));
    }
    assert.deepEqual(got, c.codes, `temperature ${c.temperature}, top_k ${c.top_k}`);
  }
});

test("promptWords names the runtime's scorer words, synonyms read as their adjective", { skip }, () => {
  const { adjectives, synonyms, cases } = fixtures.sampler.prompt_words;
  for (const c of cases) assert.deepEqual(promptWords(c.prompt, adjectives, synonyms), c.words, c.prompt);
  assert.ok(cases.some((c) => c.words.length > 0 && promptWords(c.prompt, adjectives).length < c.words.length));
});
