import { z } from "zod";
import type { ErrorCode } from "../error-codes.js";
import { DURATION_PATTERN, describeBadDuration, tryParseDuration } from "./duration.js";
import { httpUrlProblem, showUrl } from "./urls.js";

/**
 * The building blocks of the config's zod schemas: checks with stable codes, durations, URLs and
 * names. They live apart from src/config/schema.ts so that each sink's options schema (src/sinks/*.ts,
 * gathered by src/sinks/registry.ts) is made of the same parts as the rest of the config, and reports
 * its problems with the same codes, without the sinks importing the config schema that is built from
 * them.
 */

/** Schemas whose every failure, type errors included, is reported with a fixed code. */
export const fixedIssueCodes = z.registry<{ code: ErrorCode }>();

export interface Problem {
  code: ErrorCode;
  message: string;
}

/**
 * Adds a custom check whose failure carries a stable code (read back in `issues.ts`). It pushes the
 * issue itself rather than going through `superRefine`, which makes a closure on every value checked
 * (about fifteen per client: measurable at 10,000 clients).
 */
export function withCheck<S extends z.ZodType>(
  schema: S,
  check: (value: z.output<S>) => Problem | undefined,
): S {
  return schema.check(
    z.check<z.output<S>>((payload) => {
      const problem = check(payload.value);
      if (problem) {
        payload.issues.push({
          code: "custom",
          message: problem.message,
          params: { code: problem.code },
          input: payload.value,
          continue: true,
        });
      }
    }),
  ) as S;
}

export function patternCheck(re: RegExp, code: ErrorCode, describe: (value: string) => string) {
  return (value: string): Problem | undefined =>
    re.test(value) ? undefined : { code, message: describe(value) };
}

/** Echo a user value in a message without letting a pasted blob flood the output. */
export function show(value: string): string {
  return value.length > 60 ? `${value.slice(0, 60)}...` : value;
}

// ---------------------------------------------------------------------------------------------------
// Shared scalar schemas

function durationString(minimumSeconds: number) {
  const schema = withCheck(z.string(), (value) => {
    const seconds = tryParseDuration(value);
    if (seconds === undefined) return { code: "E_BAD_DURATION", message: describeBadDuration(value) };
    if (seconds < minimumSeconds)
      return { code: "E_BAD_DURATION", message: `\`${value}\` is too short: at least 1s` };
    return undefined;
  }).meta({
    pattern: DURATION_PATTERN,
    description:
      "A duration: whole numbers with units d, h, m, s, largest first (`30s`, `10m`, `24h`, `90d`, `1h30m`).",
  });
  fixedIssueCodes.add(schema, { code: "E_BAD_DURATION" });
  return schema;
}

/** `0s` allowed (a grace of zero). */
export const durationSchema = durationString(0);
/** Intervals, timeouts and rotation periods: at least one second. */
export const positiveDurationSchema = durationString(1);

const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const envNameSchema = withCheck(
  z.string(),
  patternCheck(ENV_NAME_RE, "E_BAD_ENV_NAME", (v) => `\`${show(v)}\` is not an environment variable name`),
).meta({
  pattern: ENV_NAME_RE.source,
  description: "Name of an environment variable (never the value itself).",
});

export const nonEmpty = z.string().min(1);

export function urlSchema(
  problemOf: (value: string) => string | undefined,
  description: string,
  format?: string,
) {
  return withCheck(z.string(), (value) => {
    const problem = problemOf(value);
    return problem ? { code: "E_BAD_URL", message: `\`${showUrl(value)}\` ${problem}` } : undefined;
  }).meta(format ? { format, description } : { description });
}

export const httpUrl = (description: string) => urlSchema(httpUrlProblem, description, "uri");
