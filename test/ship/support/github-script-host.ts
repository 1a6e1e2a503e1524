import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

/**
 * Runs an `actions/github-script` script the way the action does (its src/main.ts and
 * src/async-function.ts): the script is the body of an async function whose one parameter
 * destructures `{require, github, context, core, glob, io, exec, getOctokit}`, started in the
 * workspace, with the action's inputs in `INPUT_*` variables. `github` is an Octokit-shaped client
 * for exactly the REST methods the kit's scripts use, sending the requests Octokit sends (same
 * method, path, query, JSON body, `authorization: token ...`) to GITHUB_API_URL, which a test points
 * at its fake GitHub; an unknown parameter or a missing one throws, as a typo would misbehave on
 * GitHub. `github.paginate` follows `Link: rel="next"` like Octokit's. An error is reported as the
 * action reports it (`::error::Unhandled error: ...`, exit 1).
 */

const env = process.env;
const api = env["GITHUB_API_URL"] ?? "";
const token = env["INPUT_GITHUB-TOKEN"] ?? "";

interface Response {
  status: number;
  data: unknown;
  headers: Record<string, string>;
}

class RequestError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

type Method = (params: Record<string, unknown>) => Promise<Response>;

function endpoint(route: string, query: string[], body: string[]): Method {
  const [verb, template] = route.split(" ") as [string, string];
  const pathKeys = [...template.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string);
  return async (params) => {
    for (const key of Object.keys(params)) {
      if (!pathKeys.includes(key) && !query.includes(key) && !body.includes(key)) {
        throw new Error(`${route}: unknown parameter ${key}`);
      }
    }
    for (const key of [...pathKeys, ...body]) {
      if (params[key] === undefined) throw new Error(`${route}: missing parameter ${key}`);
    }
    const path = template.replace(/\{(\w+)\}/g, (_, key: string) => encodeURIComponent(String(params[key])));
    const search = new URLSearchParams();
    for (const key of query) if (params[key] !== undefined) search.set(key, String(params[key]));
    const url = `${api}${path}${search.size ? `?${search}` : ""}`;
    return request(verb, url, body.length ? Object.fromEntries(body.map((k) => [k, params[k]])) : undefined);
  };
}

async function request(verb: string, url: string, body: unknown): Promise<Response> {
  const res = await fetch(url, {
    method: verb,
    headers: {
      accept: "application/vnd.github.v3+json",
      authorization: `token ${token}`,
      "user-agent": "actions/github-script octokit-core.js",
      ...(body === undefined ? {} : { "content-type": "application/json; charset=utf-8" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  const data: unknown = text ? JSON.parse(text) : undefined;
  if (!res.ok) {
    const message = (data as { message?: string } | undefined)?.message ?? res.statusText;
    throw new RequestError(`${message} - ${verb} ${new URL(url).pathname}`, res.status);
  }
  return { status: res.status, data, headers: Object.fromEntries(res.headers) };
}

const github = {
  rest: {
    issues: {
      listComments: endpoint(
        "GET /repos/{owner}/{repo}/issues/{issue_number}/comments",
        ["since", "per_page", "page"],
        [],
      ),
      createComment: endpoint("POST /repos/{owner}/{repo}/issues/{issue_number}/comments", [], ["body"]),
      updateComment: endpoint("PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}", [], ["body"]),
    },
  },
  async paginate(method: Method, params: Record<string, unknown>): Promise<unknown[]> {
    const all: unknown[] = [];
    let res = await method(params);
    for (;;) {
      all.push(...(res.data as unknown[]));
      const next = /<([^>]+)>;\s*rel="next"/.exec(res.headers["link"] ?? "")?.[1];
      if (!next) return all;
      res = await request("GET", next, undefined);
    }
  },
};

const payload = JSON.parse(readFileSync(env["GITHUB_EVENT_PATH"] ?? "", "utf8")) as {
  number?: number;
  pull_request?: { number: number };
  issue?: { number: number };
};
const [owner, repo] = (env["GITHUB_REPOSITORY"] ?? "/").split("/") as [string, string];
const context = {
  payload,
  eventName: env["GITHUB_EVENT_NAME"],
  sha: env["GITHUB_SHA"],
  ref: env["GITHUB_REF"],
  runId: Number(env["GITHUB_RUN_ID"]),
  serverUrl: env["GITHUB_SERVER_URL"] ?? "https://github.com",
  apiUrl: api,
  repo: { owner, repo },
  issue: { owner, repo, number: (payload.issue ?? payload.pull_request ?? payload).number },
};

const command = (name: string) => (message: string) => process.stdout.write(`::${name}::${message}\n`);
const core = {
  info: (message: string) => process.stdout.write(`${message}\n`),
  notice: command("notice"),
  warning: command("warning"),
  error: command("error"),
  setFailed(message: string) {
    command("error")(message);
    process.exitCode = 1;
  },
};

const script = env["INPUT_SCRIPT"] ?? "";
const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (
  args: string,
  body: string,
) => (args: Record<string, unknown>) => Promise<unknown>;
try {
  const fn = new AsyncFunction("{require, github, context, core, glob, io, exec, getOctokit}", script);
  await fn({ require: createRequire(join(process.cwd(), "script.js")), github, context, core });
} catch (error) {
  process.stdout.write(`::error::Unhandled error: ${String(error)}\n`);
  process.exitCode = 1;
}
