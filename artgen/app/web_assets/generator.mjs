// export/runtime.py's Runtime in JavaScript, on onnxruntime-web: a prompt and a seed in, the
// code grid and the RGB image out, with the same sampling recipe and random numbers, so the
// same seed gives the same codes as the Python runtime wherever the graphs' float results agree
// (docs/web.md: parity). Works in the browser and in Node (tests/web/*.test.mjs): the caller
// hands over the `ort` module and a function that reads a file of the built folder as bytes.

import { defaultRng, gumbel } from "./rng.mjs";
import { PromptError, checkPrompt, loadTokenizer, promptIds, unknownWords } from "./tokenizer.mjs";

export { PromptError };

const GRAPHS = { masked: ["text_encoder", "predictor", "decoder"], ar: ["text_encoder", "ar_context", "ar_step", "decoder"] };
const READABLE_FORMATS = [2, 3, 4, 5, 6];
const MAX_CANDIDATES = 8; // export/runtime.py MAX_CANDIDATES

const f32 = Math.fround;

/** export/runtime.py MIN_TEMPERATURE: a temperature below it samples the argmax, as 0 does (far
 *  smaller ones, 1e-320 say, are 0 in float32 and divide the logits into inf and NaN). */
export const MIN_TEMPERATURE = 1e-6;

/** argmax over row[0..K) with numpy's tie rule (the first maximum). */
function argmax(row) {
  let best = 0, value = row[0];
  for (let k = 1; k < row.length; k++) if (row[k] > value) { value = row[k]; best = k; }
  return best;
}

/** export/runtime.py pick_codes for one row: top-k, then Gumbel-max at `temperature` (float32),
 *  or the argmax below MIN_TEMPERATURE (0 included). */
export function pickCode(logits, noise, temperature, topK) {
  const K = logits.length;
  const row = new Float32Array(logits);
  if (topK) {
    const kth = Float32Array.from(row).sort()[K - topK];
    for (let k = 0; k < K; k++) if (row[k] < kth) row[k] = -Infinity;
  }
  if (temperature >= MIN_TEMPERATURE) {
    const t = f32(temperature);
    for (let k = 0; k < K; k++) row[k] = f32(row[k] / t) + noise[k]; // the Float32Array store rounds the sum
  }
  return argmax(row);
}

/** The codes above-left, above and above-right of position t (raster order), start_id off the
 * grid, repeated for each of `rows` batch rows: what an ar_step with sampling.above reads (runtime above_codes). */
export function aboveCodes(codes, t, grid, startId, rows) {
  const row = Math.floor(t / grid), col = t % grid;
  const three = [col - 1, col, col + 1].map((c) => (row > 0 && c >= 0 && c < grid ? codes[(row - 1) * grid + c] : startId));
  return Array.from({ length: rows }, () => three).flat();
}

/** uncond + guidance * (cond - uncond), each operation rounded to float32 as numpy does. */
function guide(cond, uncond, guidance) {
  const g = f32(guidance), out = new Float32Array(cond.length);
  for (let i = 0; i < cond.length; i++) out[i] = uncond[i] + f32(g * f32(cond[i] - uncond[i]));
  return out;
}

/** export/runtime.py prompt_words: the scorer's adjectives the prompt names, in the scorer's order
 *  (the lower-cased prompt's words [a-z]+(?:-[a-z]+)*, hyphenated ones whole and each of their parts, that are an adjective
 *  or a key of `synonyms`, the bundle's scorer.synonyms, read as its adjective). */
export function promptWords(prompt, adjectives, synonyms = {}) {
  const tokens = prompt.toLowerCase().match(/[a-z]+(?:-[a-z]+)*/g) ?? [];
  const words = new Set([...tokens, ...tokens.flatMap((t) => t.split("-"))]);
  const named = new Set(words);
  for (const w of words) if (Object.hasOwn(synonyms, w)) named.add(synonyms[w]);
  return adjectives.filter((a) => named.has(a));
}

/** export/runtime.py best_candidates for one image: `logits` (C * V, candidate-major) of the scorer
 *  over C candidates; the highest mean log-sigmoid over the asked adjectives, the first on a tie. */
export function bestCandidate(logits, asked, adjectives) {
  const V = adjectives.length, C = logits.length / V;
  const index = asked.map((a) => adjectives.indexOf(a));
  let best = 0, bestScore = -Infinity;
  for (let c = 0; c < C; c++) {
    let sum = 0;
    for (const i of index) {
      const x = logits[c * V + i];
      sum += -(Math.max(0, -x) + Math.log1p(Math.exp(-Math.abs(x)))); // log sigmoid(x), stable
    }
    const score = sum / Math.max(index.length, 1);
    if (score > bestScore) { bestScore = score; best = c; }
  }
  return best;
}

/** export/runtime.py picked_candidates for one image that names a word: the candidate with the
 *  highest of the picker's `scores` (C), the first on a tie. */
export function pickedCandidate(scores) {
  let best = 0;
  for (let c = 1; c < scores.length; c++) if (scores[c] > scores[best]) best = c;
  return best;
}

function checkNumber(name, value, low) {
  const v = Number(value);
  if (!Number.isFinite(v) || (low !== undefined && v < low)) {
    throw new PromptError(`${name} must be a finite number${low !== undefined ? ` >= ${low}` : ""} (got ${value})`);
  }
  return v;
}

/** export/runtime.py check_temperature: a finite number >= 0, and 0 below MIN_TEMPERATURE. */
export function checkTemperature(value) {
  const t = checkNumber("temperature", value, 0);
  return t >= MIN_TEMPERATURE ? t : 0;
}

function checkInt(name, value, low, high) {
  const v = Number(value);
  if (!Number.isInteger(v) || v < low || v > high) {
    throw new PromptError(`${name} must be a whole number between ${low} and ${high} (got ${value})`);
  }
  return v;
}

export class Generator {
  /** Load a folder written by `artgen web`: bundle/bundle.json, its graphs and tokenizer.json,
   *  words.json. `read(path)` returns the bytes of a file in that folder (an ArrayBuffer or a
   *  Uint8Array). Throws a PromptError naming the problem when the page cannot run the bundle. */
  static async load(ort, read, options = {}) {
    const json = async (p) => JSON.parse(new TextDecoder().decode(await read(p)));
    const meta = await json("bundle/bundle.json");
    if (!READABLE_FORMATS.includes(meta.format)) {
      throw new PromptError(`the bundle has format ${meta.format}, this page reads formats ${READABLE_FORMATS.join(", ")}: rebuild it with \`artgen web\``);
    }
    const kind = meta.generator ?? "masked";
    if (!GRAPHS[kind]) throw new PromptError(`the bundle holds an unknown generator ${kind}: rebuild it with a current artgen`);
    const tokenizer = loadTokenizer(await json("bundle/tokenizer.json"));
    const words = await json("bundle/words.json");
    const sessions = {};
    const choosers = kind === "ar" ? ["scorer", "picker"].filter((g) => meta.graphs[g]) : [];
    for (const name of [...GRAPHS[kind], ...choosers]) {
      const bytes = new Uint8Array(await read(`bundle/${meta.graphs[name].file}`));
      sessions[name] = await ort.InferenceSession.create(bytes, {
        executionProviders: ["wasm"], graphOptimizationLevel: "all", ...options.session,
      });
    }
    return new Generator(ort, meta, kind, tokenizer, words, sessions);
  }

  constructor(ort, meta, kind, tokenizer, words, sessions) {
    Object.assign(this, { ort, meta, kind, tokenizer, words, sessions });
  }

  get imageSize() { return this.meta.image_size; }

  /** The prompt's words outside artgen's vocabulary (read as sub-words). */
  unknownWords(prompt) { return unknownWords(prompt, this.words); }

  int64(values, dims) { return new this.ort.Tensor("int64", BigInt64Array.from(values, (v) => BigInt(v)), dims); }

  /** Text states of one prompt: [states (1, T, d) tensor, mask values (T)]. */
  async encode(prompt) {
    checkPrompt(prompt, this.meta.prompt_limits);
    const ids = promptIds(this.tokenizer, prompt);
    const T = ids.length, mask = new Array(T).fill(1);
    const out = await this.sessions.text_encoder.run({ input_ids: this.int64(ids, [1, T]), attention_mask: this.int64(mask, [1, T]) });
    return [out[this.sessions.text_encoder.outputNames[0]], mask];
  }

  /** The prompt rows, then the same rows with the text dropped (all-zero mask), as one batch. */
  doubled(states, mask) {
    const [, T, d] = states.dims;
    const data = new Float32Array(2 * T * d);
    data.set(states.data, 0);
    data.set(states.data, T * d);
    return [new this.ort.Tensor("float32", data, [2, T, d]), this.int64([...mask, ...mask.map(() => 0)], [2, T])];
  }

  /** Settings as export/runtime.py sample_codes reads them: null takes the bundle's default. */
  settings({ steps = null, guidance = null, temperature = null, topK = null, candidates = null } = {}) {
    const d = this.meta.sampling;
    const s = {
      guidance: checkNumber("guidance", guidance ?? d.guidance),
      temperature: checkTemperature(temperature ?? d.temperature),
    };
    if (this.kind === "ar") {
      if (steps !== null && steps !== d.steps) {
        throw new PromptError(`steps ${steps} does not apply to this autoregressive bundle: it draws the ${d.steps} positions one per step`);
      }
      s.topK = checkInt("top_k", topK ?? d.top_k ?? 0, 0, this.meta.codebook_size);
      s.candidates = checkInt("candidates", candidates ?? d.candidates ?? 1, 1, MAX_CANDIDATES);
      if (s.candidates > 1 && !this.sessions.scorer && !this.sessions.picker) {
        throw new PromptError(`candidates ${s.candidates} needs a bundle with a caption picker or a code scorer: leave candidates at 1`);
      }
    } else {
      if (topK) throw new PromptError("top_k is for autoregressive bundles; this bundle holds the masked generator");
      if (candidates !== null && candidates !== 1) throw new PromptError("candidates is for autoregressive bundles; this bundle holds the masked generator");
      s.steps = checkInt("steps", steps ?? d.steps, 1, d.max_steps);
    }
    return s;
  }

  /** The code grid (Int32Array of grid*grid, raster order) of one image drawn with `seed`. */
  async sampleCodes(prompt, seed = 0, options = {}) {
    const s = this.settings(options);
    seed = checkInt("seed", seed, 0, Number.MAX_SAFE_INTEGER);
    const [states, mask] = await this.encode(prompt);
    if (this.kind !== "ar") return this.sampleMasked(states, mask, seed, s);
    const chooser = this.sessions.picker ? this.meta.picker : this.meta.scorer; // the picker in the scorer's stead (format 6)
    const adjectives = chooser?.adjectives ?? [];
    const asked = promptWords(prompt, adjectives, chooser?.synonyms ?? {});
    // at temperature 0 every candidate is the argmax draw; a prompt naming no scorer word keeps candidate 0
    if (s.candidates === 1 || s.temperature < MIN_TEMPERATURE || asked.length === 0) return this.sampleAr(states, mask, seed, s);
    return this.bestOf(states, mask, seed, s, asked, adjectives);
  }

  /** s.candidates draws, candidate j with noise stream noise_stream + j, one after another (the
   *  page has one thread); the one the caption picker finds nearest the asked words (every candidate
   *  decoded), else the one the scorer finds closest to them (runtime _best_of). */
  async bestOf(states, mask, seed, s, asked, adjectives) {
    const N = this.meta.grid ** 2, g = this.meta.grid;
    const drawn = [];
    for (let j = 0; j < s.candidates; j++) drawn.push(await this.sampleAr(states, mask, seed, s, j));
    if (this.sessions.picker) {
      const S = this.meta.image_size, V = adjectives.length, C = s.candidates;
      const images = new Uint8Array(C * S * S * 3), words = new Float32Array(C * V);
      for (let j = 0; j < C; j++) {
        images.set(await this.decode(drawn[j]), j * S * S * 3);
        for (const a of asked) words[j * V + adjectives.indexOf(a)] = 1;
      }
      const out = await this.sessions.picker.run({
        images: new this.ort.Tensor("uint8", images, [C, S, S, 3]), words: new this.ort.Tensor("float32", words, [C, V]),
      });
      return drawn[pickedCandidate(out[this.sessions.picker.outputNames[0]].data)];
    }
    const all = new Array(s.candidates * N);
    drawn.forEach((codes, j) => codes.forEach((v, t) => { all[j * N + t] = v; }));
    const out = await this.sessions.scorer.run({ codes: this.int64(all, [s.candidates, g, g]) });
    return drawn[bestCandidate(out[this.sessions.scorer.outputNames[0]].data, asked, adjectives)];
  }

  /** Raster order, one position per ar_step call, past keys/values fed back (runtime _sample_ar). */
  async sampleAr(states, mask, seed, { guidance, temperature, topK }, candidate = 0) {
    const d = this.meta.sampling, K = this.meta.codebook_size, N = this.meta.grid ** 2;
    const guided = guidance !== 1.0;
    let maskTensor = this.int64(mask, [1, mask.length]);
    if (guided) [states, maskTensor] = this.doubled(states, mask);
    const rows = guided ? 2 : 1;
    const feed = { ...(await this.sessions.ar_context.run({ states, attention_mask: maskTensor })) };
    const past = [];
    for (let i = 0; i < d.layers; i++) past.push(`past_key_${i}`);
    for (let i = 0; i < d.layers; i++) past.push(`past_value_${i}`);
    for (const name of past) feed[name] = new this.ort.Tensor("float32", new Float32Array(0), [rows, d.heads, 0, d.head_width]);
    const noise = gumbel(seed, d.noise_stream + candidate, N * K); // (N, K), row t for position t
    const step = this.sessions.ar_step;
    const codes = new Int32Array(N);
    feed.token = this.int64(new Array(rows).fill(d.start_id), [rows, 1]);
    for (let t = 0; t < N; t++) {
      if (d.above) feed.above = this.int64(aboveCodes(codes, t, this.meta.grid, d.start_id, rows), [rows, 3]);
      const out = await step.run(feed);
      const all = out[step.outputNames[0]].data; // (rows, K)
      const logits = guided ? guide(all.subarray(0, K), all.subarray(K, 2 * K), guidance) : all;
      codes[t] = pickCode(logits, noise.subarray(t * K, (t + 1) * K), temperature, topK);
      for (const name of past) feed[name] = out[name.replace("past", "present")];
      feed.token = this.int64(new Array(rows).fill(codes[t]), [rows, 1]);
    }
    return codes;
  }

  /** Guided logits (N, K) of the predictor for codes (N) (runtime logits). */
  async predictorLogits(codes, states, mask, guidance) {
    const N = codes.length;
    if (guidance === 1.0) {
      const out = await this.sessions.predictor.run({
        codes: this.int64(codes, [1, N]), states, attention_mask: this.int64(mask, [1, mask.length]),
      });
      return out[this.sessions.predictor.outputNames[0]].data;
    }
    const [states2, mask2] = this.doubled(states, mask);
    const out = await this.sessions.predictor.run({ codes: this.int64([...codes, ...codes], [2, N]), states: states2, attention_mask: mask2 });
    const all = out[this.sessions.predictor.outputNames[0]].data, half = all.length / 2;
    return guide(all.subarray(0, half), all.subarray(half), guidance);
  }

  /** MaskGIT decoding: random reveal order, cosine schedule, guidance on the first steps
   *  (runtime sample_codes, masked branch). */
  async sampleMasked(states, mask, seed, { guidance, temperature, steps }) {
    const d = this.meta.sampling, K = this.meta.codebook_size, N = this.meta.grid ** 2;
    const order = defaultRng(seed, d.order_stream).permutation(N);
    const codes = new Array(N).fill(this.meta.mask_id);
    const guidedSteps = Math.ceil(Number((steps * d.guided_share).toFixed(9)));
    let known = 0;
    for (let step = 0; step < steps; step++) {
      const logits = await this.predictorLogits(codes, states, mask, step < guidedSteps ? guidance : 1.0); // (N, K)
      const upto = N - Math.floor(N * Math.cos(Math.PI / 2 * (step + 1) / steps));
      const rows = order.subarray(known, upto);
      const noise = temperature >= MIN_TEMPERATURE ? gumbel(seed, step, rows.length * K) : null;
      rows.forEach((pos, j) => {
        codes[pos] = pickCode(logits.subarray(pos * K, (pos + 1) * K), noise && noise.subarray(j * K, (j + 1) * K), temperature, 0);
      });
      known = upto;
    }
    return Int32Array.from(codes);
  }

  /** RGB bytes (H * W * 3) of a code grid. */
  async decode(codes) {
    const g = this.meta.grid;
    const out = await this.sessions.decoder.run({ codes: this.int64(codes, [1, g, g]) });
    return out[this.sessions.decoder.outputNames[0]].data;
  }

  /** One image end to end: {codes, rgb, unknown, ms}. */
  async generate(prompt, seed = 0, options = {}) {
    const t0 = performance.now();
    const codes = await this.sampleCodes(prompt, seed, options);
    const rgb = await this.decode(codes);
    return { codes, rgb, unknown: this.unknownWords(prompt), ms: performance.now() - t0 };
  }
}
