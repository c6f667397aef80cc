// The JavaScript generator on onnxruntime-web (Node, WASM backend) against the Python runtime:
// the same codes for the same seeds where the graphs' float results agree (docs/web.md).
import assert from "node:assert/strict";
import fs from "node:fs";
import { test } from "node:test";
import { Generator } from "../../artgen/app/web_assets/generator.mjs";
import { fixtures, skip as noFixtures } from "./fixtures.mjs";

const skip = noFixtures || (!fixtures.generator && "no generator fixtures: onnxruntime-web is not installed (make web)");

async function load(site) {
  const ort = await import(fixtures.generator.ort_module);
  ort.env.wasm.numThreads = 1;
  return Generator.load(ort, (p) => fs.readFileSync(`${site}/${p}`));
}

test("codes agree with the Python runtime", { skip }, async () => {
  for (const b of fixtures.generator.bundles) {
    const gen = await load(b.site);
    let equal = 0, total = 0, identical = 0;
    const report = [];
    for (const c of b.cases) {
      const codes = await gen.sampleCodes(c.prompt, c.seed, { steps: c.steps, temperature: c.temperature ?? null, candidates: c.candidates ?? null });
      const same = c.codes.filter((v, i) => v === codes[i]).length;
      const first = c.codes.findIndex((v, i) => v !== codes[i]);
      equal += same; total += codes.length; identical += same === codes.length;
      report.push(`${c.prompt}/${c.seed}${c.steps ? `/${c.steps} steps` : ""}${c.temperature != null ? `/t=${c.temperature}` : ""}: ${same}/${codes.length}` + (first >= 0 ? ` (first differs at ${first})` : ""));
      assert.ok(first === -1 || first >= b.min_prefix, `${b.name}: ${report.at(-1)}: the first ${b.min_prefix} codes should agree`);
    }
    const rate = equal / total;
    fs.appendFileSync(fixtures.generator.report, JSON.stringify({ bundle: b.name, equal, total, identical, images: b.cases.length, report }) + "\n");
    assert.ok(rate >= b.min_rate, `${b.name}: ${equal}/${total} codes agree (< ${b.min_rate}): ${report.join("; ")}`);
    assert.ok(identical >= b.min_identical, `${b.name}: ${identical} of ${b.cases.length} images identical: ${report.join("; ")}`);
  }
});

test("images decode like the Python runtime's", { skip }, async () => {
  for (const b of fixtures.generator.bundles.filter((b) => b.pixels)) {
    const gen = await load(b.site);
    const rgb = await gen.decode(b.pixels.codes);
    let worst = 0;
    for (let i = 0; i < rgb.length; i++) worst = Math.max(worst, Math.abs(rgb[i] - b.pixels.rgb[i]));
    assert.ok(worst <= 1, `${b.name}: pixels differ by up to ${worst}`);
  }
});
