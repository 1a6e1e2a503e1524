import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { GitOpsError } from "../errors.js";
import type { Logger } from "../log.js";
import { Secret } from "../secret.js";
import { sendJson } from "./respond.js";

/**
 * `POST /hooks/git`: a push tells the daemon to fetch and run now instead of at the next poll.
 *
 * Authentication, one of:
 * - GitHub: `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the raw body with the shared
 *   secret (GitHub, "Validating webhook deliveries").
 * - Anyone else (GitLab, Gitea, a CI job): `Authorization: Bearer <secret>`.
 * Both are compared in constant time. A request that fails is answered 401 and starts nothing.
 *
 * The answer (202) comes before the run, which happens asynchronously in the run queue. Bodies over
 * 1 MiB are refused (413) without being read.
 *
 * Replays are bounded by what is signed: the replay key is the SHA-256 of the signed body, never the
 * `X-GitHub-Delivery` header, which the HMAC does not cover (an id as key let a captured body be
 * replayed under a fresh id, and let anyone block a coming delivery by sending its id first). A
 * signed body already received (a replay, or GitHub's redelivery of an event already acted on) is
 * answered 409 and starts nothing. GitHub push bodies differ from push to push (`after`, `head_commit`,
 * timestamps), so two real pushes never share a key. The list holds the last
 * {@link DEFAULT_REPLAY_CAPACITY} digests in memory: an older replay, or one after a restart, is
 * accepted, and at most starts one more fetch-and-reconcile of the branch as it is now (the body is
 * only read for its `ref`; the daemon fetches the commit itself).
 *
 * A bearer request has no replay key: the token is the secret itself, so whoever can replay one can
 * send any request; and triggers from CI often send the same body every time.
 */

/** GitHub caps payloads at 25 MB, but a push notification needs no more than this to be verified. */
export const MAX_WEBHOOK_BODY_BYTES = 1024 * 1024;

/** Signed-body digests remembered for replay detection. */
export const DEFAULT_REPLAY_CAPACITY = 1024;

/** Reads the webhook secret from the environment (`secret_env`) or a file (`secret_file`, trimmed). */
export async function loadWebhookSecret(
  webhook: { secret_env?: string; secret_file?: string },
  env: NodeJS.ProcessEnv,
): Promise<Secret> {
  let value: string | undefined;
  let where: string;
  if (webhook.secret_env !== undefined) {
    where = `environment variable ${webhook.secret_env}`;
    value = env[webhook.secret_env];
  } else if (webhook.secret_file !== undefined) {
    where = `file ${webhook.secret_file}`;
    try {
      value = await readFile(webhook.secret_file, "utf8");
    } catch (error) {
      throw new GitOpsError(
        "E_WEBHOOK_SECRET",
        `webhook secret: cannot read ${where}: ${(error as Error).message}`,
      );
    }
  } else {
    throw new GitOpsError("E_WEBHOOK_SECRET", "webhook: set secret_env or secret_file");
  }
  const trimmed = value?.trim() ?? "";
  if (trimmed.length < 16) {
    throw new GitOpsError(
      "E_WEBHOOK_SECRET",
      `webhook secret from ${where} is ${trimmed.length === 0 ? "empty or missing" : "shorter than 16 characters"}`,
    );
  }
  return new Secret(trimmed);
}

/** True when `header` is `sha256=<hex>` of the body's HMAC-SHA256 under `secret`. */
export function verifyGitHubSignature(secret: Secret, body: Buffer, header: string | undefined): boolean {
  const match = /^sha256=([0-9a-fA-F]{64})$/.exec(header?.trim() ?? "");
  if (!match) return false;
  const given = Buffer.from(match[1] as string, "hex");
  const expected = createHmac("sha256", secret.reveal()).update(body).digest();
  return timingSafeEqual(given, expected);
}

/** True when `header` is `Bearer <secret>`; compared as SHA-256 digests, so lengths never leak. */
export function verifyBearer(secret: Secret, header: string | undefined): boolean {
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? "");
  if (!match) return false;
  const digest = (value: string) => createHash("sha256").update(value).digest();
  return timingSafeEqual(digest(match[1] as string), digest(secret.reveal()));
}

/** A bounded set of recently seen keys (signed-body digests): the oldest is forgotten first. */
export class RecentIds {
  readonly #capacity: number;
  readonly #ids = new Set<string>();

  constructor(capacity: number) {
    this.#capacity = Math.max(1, capacity);
  }

  /** Records `id`; false when it was already there (a replay). */
  add(id: string): boolean {
    if (this.#ids.has(id)) return false;
    this.#ids.add(id);
    if (this.#ids.size > this.#capacity) {
      const oldest = this.#ids.values().next().value as string;
      this.#ids.delete(oldest);
    }
    return true;
  }
}

export interface WebhookOptions {
  secret: Secret;
  /** With a git source: pushes to other branches are acknowledged and ignored. */
  branch: string | null;
  /** Starts the fetch and run (asynchronously: the handler has answered already). */
  onAccepted: () => void;
  /** Counts each outcome (metrics). */
  count?: (result: string) => void;
  logger: Logger;
  replayCapacity?: number;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/** The request handler for `POST /hooks/git`. */
export function createWebhookHandler(options: WebhookOptions): Handler {
  const seen = new RecentIds(options.replayCapacity ?? DEFAULT_REPLAY_CAPACITY);
  const log = options.logger;
  const answer = (res: ServerResponse, status: number, result: string, body: Record<string, unknown>) => {
    options.count?.(result);
    const close = status === 401 || status === 413;
    sendJson(res, status, body, close ? { connection: "close" } : {});
    if (status >= 400) log.warn({ status, result }, "webhook refused");
  };
  return async (req, res) => {
    const signature = header(req, "x-hub-signature-256");
    const authorization = header(req, "authorization");
    if (Number(req.headers["content-length"] ?? 0) > MAX_WEBHOOK_BODY_BYTES) {
      return answer(res, 413, "too_large", { error: `body larger than ${MAX_WEBHOOK_BODY_BYTES} bytes` });
    }
    if (signature === undefined && authorization === undefined) {
      return answer(res, 401, "unauthorized", { error: "missing X-Hub-Signature-256 or Authorization" });
    }
    if (signature === undefined && !verifyBearer(options.secret, authorization)) {
      return answer(res, 401, "unauthorized", { error: "bad credentials" });
    }
    const body = await readLimited(req, MAX_WEBHOOK_BODY_BYTES);
    if (body === null)
      return answer(res, 413, "too_large", { error: `body larger than ${MAX_WEBHOOK_BODY_BYTES} bytes` });
    if (signature !== undefined && !verifyGitHubSignature(options.secret, body, signature)) {
      return answer(res, 401, "unauthorized", { error: "bad signature" });
    }
    // Not signed: logged for correlation with GitHub's delivery log, never trusted.
    const delivery = header(req, "x-github-delivery")?.slice(0, 64);
    if (signature !== undefined && !seen.add(replayKey(body))) {
      return answer(res, 409, "replayed", {
        error: "this signed body was already received (the replay key is the body's SHA-256)",
      });
    }
    const event = header(req, "x-github-event");
    if (event === "ping") return answer(res, 200, "ping", { pong: true });
    if (event !== undefined && event !== "push")
      return answer(res, 202, "ignored", { ignored: `event ${event}` });
    const ref = pushedRef(body);
    if (options.branch !== null && ref !== null && ref !== `refs/heads/${options.branch}`) {
      return answer(res, 202, "ignored", { ignored: `push to ${ref}` });
    }
    answer(res, 202, "accepted", { accepted: true });
    log.info({ delivery, ref }, "webhook accepted; run requested");
    setImmediate(options.onAccepted);
  };
}

/** The replay key of a signed delivery: what the HMAC covers, i.e. the body. */
export function replayKey(body: Buffer): string {
  return `sha256:${createHash("sha256").update(body).digest("hex")}`;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The push's `ref`, when the body is a JSON object that has one. */
function pushedRef(body: Buffer): string | null {
  try {
    const parsed = JSON.parse(body.toString("utf8")) as unknown;
    if (
      typeof parsed === "object" &&
      parsed !== null &&
      typeof (parsed as { ref?: unknown }).ref === "string"
    ) {
      return (parsed as { ref: string }).ref;
    }
  } catch {
    // Not JSON (a form-encoded delivery, a bare trigger): nothing to filter on.
  }
  return null;
}

/** The whole body, or null as soon as it passes `limit` (the rest is not read). */
function readLimited(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off("data", onData);
        req.pause();
        resolve(null);
        return;
      }
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.once("end", () => resolve(Buffer.concat(chunks)));
    req.once("error", reject);
    req.once("aborted", () => reject(new Error("request aborted")));
  });
}
