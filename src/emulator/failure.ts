import { GitOpsError } from "../errors.js";
import { FAILURES, type FailureName } from "./behaviour.js";

/**
 * A rule the emulated API refuses a request with. The store throws it; the HTTP layer turns it into a
 * Cloudflare failure envelope with `status` and `apiCode` from the failure table in behaviour.ts, so
 * a rule never picks its own status or code. `kind` names the rule; the error code is always
 * `E_EMULATOR_REFUSED`, since it never leaves the emulator (clients see the envelope).
 */
export class ApiFailure extends GitOpsError {
  readonly kind: FailureName;
  readonly status: number;
  readonly apiCode: number;

  constructor(kind: FailureName, message: string, context: Record<string, unknown> = {}) {
    super("E_EMULATOR_REFUSED", message, {
      disposition: "terminal",
      context,
    });
    this.kind = kind;
    this.status = FAILURES[kind].status;
    this.apiCode = FAILURES[kind].code;
  }
}

/** Shorthand used by the rules: `throw fail("invalidField", "...")`. */
export function fail(kind: FailureName, message: string, context: Record<string, unknown> = {}): ApiFailure {
  return new ApiFailure(kind, message, context);
}
