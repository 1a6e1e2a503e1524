import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * Small fakes of the GitHub and GitLab REST endpoints the CI kit's comment steps call, over real
 * HTTP. Each enforces what the real API does for those endpoints: the token, the paths and
 * methods, pagination (`Link` on GitHub, `x-next-page` on GitLab), the body's type and GitHub's
 * 65,536-character limit, GitLab's rule that only a note's author edits it. Every request is
 * recorded; one outside the endpoints is answered 404 and listed in `unexpected`.
 */

export interface Recorded {
  method: string;
  path: string;
}

interface Fake {
  url: string;
  requests: Recorded[];
  unexpected: string[];
  close(): Promise<void>;
}

async function listen(handler: (req: IncomingMessage, body: string, res: ServerResponse) => void): Promise<{
  server: Server;
  url: string;
}> {
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (body += chunk));
    req.on("end", () => handler(req, body, res));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function send(
  res: ServerResponse,
  status: number,
  data: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
  res.end(JSON.stringify(data));
}

function jsonBody(body: string): { body?: unknown } | null {
  try {
    return JSON.parse(body) as { body?: unknown };
  } catch {
    return null;
  }
}

export interface GitHubComment {
  id: number;
  body: string;
  user: { login: string; type: "Bot" | "User" };
  updated: number;
}

export interface FakeGitHub extends Fake {
  comments: GitHubComment[];
  /** Adds a comment as `login` would have written it. */
  seed(login: string, body: string): GitHubComment;
}

/** GitHub: list, create and update issue comments of `owner/repo#issue`, as `bot` (GITHUB_TOKEN's user). */
export async function startFakeGitHub(options: {
  token: string;
  repository: string;
  issue: number;
  bot?: string;
}): Promise<FakeGitHub> {
  const bot = options.bot ?? "github-actions[bot]";
  const comments: GitHubComment[] = [];
  const requests: Recorded[] = [];
  const unexpected: string[] = [];
  let nextId = 1000;
  const seed = (login: string, body: string): GitHubComment => {
    const comment: GitHubComment = {
      id: nextId++,
      body,
      user: { login, type: login.endsWith("[bot]") ? "Bot" : "User" },
      updated: 0,
    };
    comments.push(comment);
    return comment;
  };
  const list = `/repos/${options.repository}/issues/${options.issue}/comments`;
  const one = new RegExp(`^/repos/${options.repository}/issues/comments/(\\d+)$`);
  const { server, url } = await listen((req, raw, res) => {
    const u = new URL(req.url ?? "/", "http://x");
    requests.push({ method: req.method ?? "", path: u.pathname });
    const auth = req.headers.authorization ?? "";
    if (auth !== `token ${options.token}` && auth !== `Bearer ${options.token}`) {
      return send(res, 401, { message: "Bad credentials" });
    }
    const payload = jsonBody(raw);
    const checkBody = (): string | null => {
      const body = payload?.body;
      if (typeof body !== "string" || body === "") return "body must be a non-empty string";
      if (body.length > 65_536) return "body is too long (maximum is 65536 characters)";
      return null;
    };
    if (u.pathname === list && req.method === "GET") {
      const perPage = Math.min(Number(u.searchParams.get("per_page") ?? 30), 100);
      const page = Number(u.searchParams.get("page") ?? 1);
      const slice = comments.slice((page - 1) * perPage, page * perPage);
      const headers: Record<string, string> = {};
      if (page * perPage < comments.length) {
        headers["link"] = `<${url}${list}?per_page=${perPage}&page=${page + 1}>; rel="next"`;
      }
      return send(
        res,
        200,
        slice.map(({ id, body, user }) => ({ id, body, user })),
        headers,
      );
    }
    if (u.pathname === list && req.method === "POST") {
      const problem = checkBody();
      if (problem) return send(res, 422, { message: problem });
      const { id, body, user } = seed(bot, payload?.body as string);
      return send(res, 201, { id, body, user });
    }
    const match = one.exec(u.pathname);
    if (match && req.method === "PATCH") {
      const comment = comments.find((c) => c.id === Number(match[1]));
      if (!comment) return send(res, 404, { message: "Not Found" });
      const problem = checkBody();
      if (problem) return send(res, 422, { message: problem });
      comment.body = payload?.body as string;
      comment.updated++;
      return send(res, 200, { id: comment.id, body: comment.body, user: comment.user });
    }
    unexpected.push(`${req.method} ${u.pathname}`);
    return send(res, 404, { message: "Not Found" });
  });
  return {
    url,
    comments,
    requests,
    unexpected,
    seed,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export interface GitLabNote {
  id: number;
  body: string;
  author: { id: number; username: string };
  updated: number;
}

export interface FakeGitLab extends Fake {
  /** CI_API_V4_URL. */
  apiUrl: string;
  notes: GitLabNote[];
  seed(author: { id: number; username: string }, body: string): GitLabNote;
}

/** GitLab: the token's user, and list, create and update the notes of merge request `iid` of `project`. */
export async function startFakeGitLab(options: {
  token: string;
  project: string;
  iid: number;
  user: { id: number; username: string };
}): Promise<FakeGitLab> {
  const notes: GitLabNote[] = [];
  const requests: Recorded[] = [];
  const unexpected: string[] = [];
  let nextId = 500;
  const seed = (author: { id: number; username: string }, body: string): GitLabNote => {
    const note: GitLabNote = { id: nextId++, body, author, updated: 0 };
    notes.push(note);
    return note;
  };
  const list = `/api/v4/projects/${options.project}/merge_requests/${options.iid}/notes`;
  const one = new RegExp(`^${list}/(\\d+)$`);
  const view = ({ id, body, author }: GitLabNote) => ({ id, body, author, system: false });
  const { server, url } = await listen((req, raw, res) => {
    const u = new URL(req.url ?? "/", "http://x");
    requests.push({ method: req.method ?? "", path: u.pathname });
    if (req.headers["private-token"] !== options.token)
      return send(res, 401, { message: "401 Unauthorized" });
    const payload = jsonBody(raw);
    const body = payload?.body;
    if (u.pathname === "/api/v4/user" && req.method === "GET") return send(res, 200, options.user);
    if (u.pathname === list && req.method === "GET") {
      const perPage = Math.min(Number(u.searchParams.get("per_page") ?? 20), 100);
      const page = Number(u.searchParams.get("page") ?? 1);
      const sorted = u.searchParams.get("sort") === "asc" ? notes : [...notes].reverse();
      const more = page * perPage < notes.length;
      return send(res, 200, sorted.slice((page - 1) * perPage, page * perPage).map(view), {
        "x-page": String(page),
        "x-next-page": more ? String(page + 1) : "",
      });
    }
    if (u.pathname === list && req.method === "POST") {
      if (typeof body !== "string" || body === "")
        return send(res, 400, { message: "400 Bad request - body is missing" });
      return send(res, 201, view(seed(options.user, body)));
    }
    const match = one.exec(u.pathname);
    if (match && req.method === "PUT") {
      const note = notes.find((n) => n.id === Number(match[1]));
      if (!note) return send(res, 404, { message: "404 Not found" });
      if (note.author.id !== options.user.id) return send(res, 403, { message: "403 Forbidden" });
      if (typeof body !== "string" || body === "")
        return send(res, 400, { message: "400 Bad request - body is missing" });
      note.body = body;
      note.updated++;
      return send(res, 200, view(note));
    }
    unexpected.push(`${req.method} ${u.pathname}`);
    return send(res, 404, { message: "404 Not found" });
  });
  return {
    url,
    apiUrl: `${url}/api/v4`,
    notes,
    requests,
    unexpected,
    seed,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
