// numpy's default_rng streams, permutation and the runtime's gumbel() in JavaScript.
import assert from "node:assert/strict";
import { test } from "node:test";
import { PCG64, defaultRng, gumbel } from "../../artgen/app/web_assets/rng.mjs";
import { fixtures, skip } from "./fixtures.mjs";

const entropy = (e) => e.map((v) => BigInt(v)); // big seeds come as strings

test("random() doubles equal numpy's, at the start and the end of a 131,072-number stream", { skip }, () => {
  for (const c of fixtures.random) {
    const values = new PCG64(entropy(c.entropy)).randomArray(c.count);
    assert.deepEqual(Array.from(values.subarray(0, c.head.length)), c.head, `head of ${c.entropy}`);
    assert.deepEqual(Array.from(values.subarray(c.count - c.tail.length)), c.tail, `tail of ${c.entropy}`);
  }
});

test("permutation(n) equals numpy's Generator.permutation", { skip }, () => {
  for (const c of fixtures.permutation) {
    assert.deepEqual(Array.from(defaultRng(BigInt(c.seed), c.stream).permutation(c.n)), c.values, `seed ${c.seed}, n ${c.n}`);
  }
});

test("gumbel() equals the runtime's float32 noise", { skip }, () => {
  for (const c of fixtures.gumbel) {
    const values = gumbel(c.seed, c.stream, c.count);
    let differ = 0;
    for (let i = 0; i < c.count; i++) if (values[i] !== c.values[i]) differ++;
    assert.equal(differ, 0, `${differ} of ${c.count} values differ for seed ${c.seed}, stream ${c.stream}`);
  }
});

test("negative seeds are refused as numpy refuses them", () => {
  assert.throws(() => defaultRng(-1, 0), /seeds must be >= 0/);
});
