import { randomInt } from "node:crypto";

/**
 * A small seeded PRNG (sfc32, seeded through splitmix32). The emulator draws every random decision
 * from it (faults, client ids, secrets, verification tokens) so that a run with `--seed N` replays the
 * same ids and the same faults for the same sequence of requests. Not cryptographic: these are test
 * secrets for a local emulator.
 */
export class Prng {
  #a = 0;
  #b = 0;
  #c = 0;
  #d = 0;

  constructor(seed: number) {
    let s = seed >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#a = next();
    this.#b = next();
    this.#c = next();
    this.#d = next();
    for (let i = 0; i < 12; i++) this.uint32();
  }

  /** A uniformly distributed 32-bit unsigned integer. */
  uint32(): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0;
    this.#d = (this.#d + 1) >>> 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) >>> 0;
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0;
    this.#c = (this.#c + t) >>> 0;
    return t;
  }

  /** A float in [0, 1). */
  next(): number {
    return this.uint32() / 0x1_0000_0000;
  }

  /** `length` lowercase hex characters. */
  hex(length: number): string {
    let out = "";
    while (out.length < length) out += this.uint32().toString(16).padStart(8, "0");
    return out.slice(0, length);
  }
}

/** The independent streams the emulator draws from; separate so that fault settings never shift ids. */
export interface RandomStreams {
  faults: Prng;
  ids: Prng;
  secrets: Prng;
}

/** Derives the three streams from one seed (each stream gets its own splitmix-mixed seed). */
export function createStreams(seed: number): RandomStreams {
  return {
    faults: new Prng(seed ^ 0x5bd1e995),
    ids: new Prng(seed ^ 0x27d4eb2f),
    secrets: new Prng(seed ^ 0x165667b1),
  };
}

/** A seed for runs that did not ask for one. */
export function randomSeed(): number {
  return randomInt(0, 2 ** 31);
}
