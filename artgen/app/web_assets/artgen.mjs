// The page: loads the bundle next to it on onnxruntime-web's WASM backend, generates on
// Generate, draws the image. window.artgen exposes the generator and the last result (codes
// included) for tests and scripts/bench_web.py.

import * as ort from "./ort/ort.wasm.bundle.min.mjs";
import { Generator, PromptError } from "./generator.mjs";

const $ = (id) => document.getElementById(id);
const status = (text, state) => { $("status").textContent = text; $("status").dataset.state = state; };

const read = async (path) => {
  const r = await fetch(new URL(path, import.meta.url));
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.arrayBuffer();
};

const state = { generator: null, last: null, runs: 0, error: null };
window.artgen = state;

function draw(rgb, size) {
  const canvas = $("canvas");
  canvas.width = canvas.height = size;
  const image = new ImageData(size, size);
  for (let i = 0; i < size * size; i++) {
    image.data[4 * i] = rgb[3 * i];
    image.data[4 * i + 1] = rgb[3 * i + 1];
    image.data[4 * i + 2] = rgb[3 * i + 2];
    image.data[4 * i + 3] = 255;
  }
  canvas.getContext("2d").putImageData(image, 0, 0);
}

async function onGenerate(event) {
  event.preventDefault();
  const gen = state.generator;
  const prompt = $("prompt").value;
  const seed = Number($("seed").value || 0);
  const steps = gen.kind === "masked" && $("steps").value ? Number($("steps").value) : null;
  $("generate").disabled = true;
  status("Generating…", "busy");
  // let the browser paint the status before the sampler holds the thread
  await new Promise((resolve) => setTimeout(resolve, 0));
  try {
    const r = await gen.generate(prompt, seed, { steps });
    draw(r.rgb, gen.imageSize);
    state.last = { prompt, seed, steps, codes: Array.from(r.codes), ms: r.ms, unknown: r.unknown };
    $("time").textContent = `${gen.kind === "ar" ? `${r.codes.length} positions` : `${steps ?? gen.meta.sampling.steps} steps`} in ${r.ms.toFixed(0)} ms`;
    $("unknown").textContent = r.unknown.length
      ? `Not in artgen's vocabulary (read as sub-words): ${r.unknown.join(", ")}` : "";
    status(`“${prompt.trim()}”, seed ${seed}`, "done");
  } catch (e) {
    const expected = e instanceof PromptError;
    state.last = { prompt, seed, steps, error: e.message };
    status(expected ? e.message : `error: ${e.message}`, expected ? "message" : "error");
  } finally {
    state.runs += 1;
    $("generate").disabled = false;
  }
}

async function main() {
  const t0 = performance.now();
  try { // everything that can fail on a damaged folder, the onnxruntime-web module included, shows in #status
    // One thread: the page needs no cross-origin isolation (any static server works), and the
    // Python runtime runs the per-step graph on one thread too.
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.proxy = false;
    ort.env.wasm.wasmPaths = { wasm: new URL("./ort/ort-wasm-simd-threaded.wasm", import.meta.url).href };
    state.generator = await Generator.load(ort, read);
  } catch (e) {
    state.error = e.message;
    status(e instanceof PromptError ? e.message : `The model could not be loaded: ${e.message}`, "error");
    return;
  }
  const gen = state.generator, m = gen.meta;
  if (gen.kind === "masked") {
    $("steps-label").hidden = false;
    $("steps").value = m.sampling.steps;
    $("steps").max = m.sampling.max_steps;
  }
  $("model").textContent = `${m.encoder} encoder, ${gen.kind === "ar" ? "autoregressive" : "masked"} generator, ` +
    `${m.precision}, ${m.image_size}×${m.image_size} px; loaded in ${(performance.now() - t0).toFixed(0)} ms`;
  $("form").addEventListener("submit", onGenerate);
  $("generate").disabled = false;
  status("Ready: type a few adjectives and press Generate.", "ready");
}

main();
