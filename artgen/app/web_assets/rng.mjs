// numpy's random streams in JavaScript: `default_rng([seed, stream])` (SeedSequence + PCG64),
// `Generator.random()` doubles, `Generator.permutation(n)`, and the runtime's gumbel(), so the
// page draws exactly the numbers export/runtime.py draws for the same seed.
//
// Sources ported: numpy/random/bit_generator.pyx (SeedSequence), numpy/random/src/pcg64
// (PCG64 "XSL-RR 128/64", the O'Neill PCG family), numpy/random/src/distributions
// (random_standard_uniform, random_interval). tests/web/rng.test.mjs checks them against numpy.

const MASK32 = 0xffffffffn;
const INIT_A = 0x43b0d7e5, MULT_A = 0x931e8875, INIT_B = 0x8b51f9dd, MULT_B = 0x58f38ded;
const MIX_MULT_L = 0xca01f9dd, MIX_MULT_R = 0x4973f715, POOL_SIZE = 4;

/** An int (Number or BigInt, >= 0) as numpy's little-endian uint32 words; 0 is one word. */
function intWords(n) {
  let v = BigInt(n);
  if (v < 0n) throw new RangeError(`seeds must be >= 0 (got ${n})`);
  if (v === 0n) return [0];
  const words = [];
  while (v > 0n) { words.push(Number(v & MASK32)); v >>= 32n; }
  return words;
}

/** The 4-word entropy pool of SeedSequence(entropy) for a list of ints, as numpy mixes it. */
function seedPool(entropy) {
  const ent = entropy.flatMap(intWords);
  let hashConst = INIT_A;
  const hashmix = (value) => {
    value = (value ^ hashConst) >>> 0;
    hashConst = Math.imul(hashConst, MULT_A) >>> 0;
    value = Math.imul(value, hashConst) >>> 0;
    return (value ^ (value >>> 16)) >>> 0;
  };
  const mix = (x, y) => {
    const r = (Math.imul(MIX_MULT_L, x) - Math.imul(MIX_MULT_R, y)) >>> 0;
    return (r ^ (r >>> 16)) >>> 0;
  };
  const pool = new Array(POOL_SIZE);
  for (let i = 0; i < POOL_SIZE; i++) pool[i] = hashmix(i < ent.length ? ent[i] : 0);
  for (let src = 0; src < POOL_SIZE; src++)
    for (let dst = 0; dst < POOL_SIZE; dst++)
      if (src !== dst) pool[dst] = mix(pool[dst], hashmix(pool[src]));
  for (let src = POOL_SIZE; src < ent.length; src++)
    for (let dst = 0; dst < POOL_SIZE; dst++) pool[dst] = mix(pool[dst], hashmix(ent[src]));
  return pool;
}

/** SeedSequence(entropy).generate_state(nWords, uint32). */
export function generateState(entropy, nWords) {
  const pool = seedPool(entropy);
  let hashConst = INIT_B;
  const out = [];
  for (let i = 0; i < nWords; i++) {
    let v = (pool[i % POOL_SIZE] ^ hashConst) >>> 0;
    hashConst = Math.imul(hashConst, MULT_B) >>> 0;
    v = Math.imul(v, hashConst) >>> 0;
    out.push((v ^ (v >>> 16)) >>> 0);
  }
  return out;
}

// 128-bit numbers as eight 16-bit limbs, least significant first: every partial product and
// column sum stays below 2^53, so plain Numbers do exact arithmetic (BigInt is ~50x slower and
// the autoregressive sampler draws 131,072 numbers per image).
const MULTIPLIER = limbsOf(0x2360ed051fc65da44385df649fccf645n); // PCG_DEFAULT_MULTIPLIER_128

function limbsOf(big) {
  const l = new Array(8);
  for (let i = 0; i < 8; i++) { l[i] = Number(big & 0xffffn); big >>= 16n; }
  return l;
}

function bigOf(limbs) {
  let v = 0n;
  for (let i = 7; i >= 0; i--) v = (v << 16n) | BigInt(limbs[i]);
  return v;
}

const M128 = (1n << 128n) - 1n;

/** numpy's PCG64 bit generator. */
export class PCG64 {
  /** The generator numpy.random.default_rng(entropy) holds, entropy a list of ints >= 0. */
  constructor(entropy) {
    const w = generateState(entropy, 8); // generate_state(4, uint64): words (lo, hi) per uint64
    const u64 = (k) => (BigInt(w[2 * k + 1]) << 32n) | BigInt(w[2 * k]);
    const initState = (u64(0) << 64n) | u64(1);
    const initSeq = (u64(2) << 64n) | u64(3);
    // pcg_setseq_128_srandom_r: state 0, inc = seq*2+1, step, state += init, step
    this.inc = limbsOf(((initSeq << 1n) | 1n) & M128);
    this.s = limbsOf(0n);
    this.step();
    this.s = limbsOf((bigOf(this.s) + initState) & M128);
    this.step();
    this.hasUint32 = false;
    this.uinteger = 0;
    this.hi = 0; this.lo = 0; // the last 64-bit output as two unsigned 32-bit halves
  }

  get state() { return bigOf(this.s); }

  /** state = state * MULTIPLIER + inc (mod 2^128). */
  step() {
    const s = this.s, m = MULTIPLIER, inc = this.inc, r = new Array(8);
    let carry = 0;
    for (let k = 0; k < 8; k++) {
      let acc = carry + inc[k];
      for (let i = 0; i <= k; i++) acc += s[i] * m[k - i];
      r[k] = acc % 65536;
      carry = Math.floor(acc / 65536);
    }
    this.s = r;
  }

  /** The next 64-bit output (XSL-RR), left in this.hi / this.lo. */
  next64() {
    this.step();
    const s = this.s;
    let hi = (((s[7] << 16) | s[6]) ^ ((s[3] << 16) | s[2])) >>> 0;
    let lo = (((s[5] << 16) | s[4]) ^ ((s[1] << 16) | s[0])) >>> 0;
    const rot = s[7] >>> 10; // state >> 122
    if (rot >= 32) { const t = hi; hi = lo; lo = t; }
    const r = rot & 31;
    if (r) {
      const nh = ((hi >>> r) | (lo << (32 - r))) >>> 0;
      const nl = ((lo >>> r) | (hi << (32 - r))) >>> 0;
      hi = nh; lo = nl;
    }
    this.hi = hi; this.lo = lo;
  }

  /** next_uint32: the low half of a fresh 64-bit output, then its high half. */
  next32() {
    if (this.hasUint32) { this.hasUint32 = false; return this.uinteger; }
    this.next64();
    this.hasUint32 = true;
    this.uinteger = this.hi;
    return this.lo;
  }

  /** Generator.random(): a double in [0, 1) from the top 53 bits. */
  random() {
    this.next64();
    return (this.hi * 2097152 + (this.lo >>> 11)) / 9007199254740992;
  }

  /** Generator.random(size=n) as a Float64Array. */
  randomArray(n) {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = this.random();
    return out;
  }

  /** random_interval(max): uniform in [0, max] by masked rejection (max < 2^32 here). */
  interval(max) {
    if (max === 0) return 0;
    let mask = max;
    mask |= mask >>> 1; mask |= mask >>> 2; mask |= mask >>> 4; mask |= mask >>> 8; mask |= mask >>> 16;
    mask >>>= 0;
    let v;
    do { v = (this.next32() & mask) >>> 0; } while (v > max);
    return v;
  }

  /** Generator.permutation(n) for an int n: arange(n) shuffled by Fisher-Yates from the end. */
  permutation(n) {
    const a = new Int32Array(n);
    for (let i = 0; i < n; i++) a[i] = i;
    for (let i = n - 1; i >= 1; i--) {
      const j = this.interval(i);
      const t = a[i]; a[i] = a[j]; a[j] = t;
    }
    return a;
  }
}

/** numpy.random.default_rng([seed, stream]) of the runtime's streams. */
export function defaultRng(seed, stream) {
  return new PCG64([seed, stream]);
}

/** export/runtime.py gumbel(seed, stream, n): -log(-log(clip(u, 1e-20, 1 - 1e-7))) in float64,
 *  rounded to float32 as the samplers use it. Returns a Float32Array of n values. */
export function gumbel(seed, stream, n) {
  const rng = defaultRng(seed, stream);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.min(Math.max(rng.random(), 1e-20), 1.0 - 1e-7);
    out[i] = -Math.log(-Math.log(u));
  }
  return out;
}
