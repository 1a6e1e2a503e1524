/**
 * "Did you mean" suggestions for unknown keys and enum values. A typo such as `prun:` or
 * `authorisation_code` should point at the fix, not only at the problem (renovate's validator does the
 * same for its options).
 */

/** Words longer than this get no suggestion: the distance is quadratic and such keys are not typos. */
const MAX_WORD = 64;

/**
 * Edit distance counting an insert, a delete, a substitution or a swap of two neighbours as one
 * (optimal string alignment), so `vualt` is one step from `vault`. Three rows of memory.
 */
export function levenshtein(a: string, b: string): number {
  if (a === b) return 0;
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  let before = new Array<number>(b.length + 1).fill(0);
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  let current = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    current[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, (before[j - 2] ?? 0) + 1);
      current[j] = best;
    }
    [before, previous, current] = [previous, current, before];
  }
  return previous[b.length] ?? 0;
}

/** Case, `-`, `_` and spaces do not count: `tokenEndpointAuthMethod` suggests `token_endpoint_auth_method`. */
function normalise(word: string): string {
  return word.toLowerCase().replace(/[-_\s]/g, "");
}

/**
 * The candidate closest to `word`, when it is close enough to be a likely typo (at most a third of the
 * word's letters differ, and at least one may); `undefined` otherwise.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  if (word.length === 0 || word.length > MAX_WORD) return undefined;
  const wanted = normalise(word);
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    if (candidate === word) continue;
    const distance = normalise(candidate) === wanted ? 0 : levenshtein(word.toLowerCase(), candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  const allowed = Math.max(1, Math.floor(word.length / 3));
  return bestDistance <= allowed ? best : undefined;
}
