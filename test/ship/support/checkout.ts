import { execFile } from "node:child_process";
import { chmod, copyFile, lstat, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { ROOT } from "../../helpers/program.js";
import { scratch } from "./scratch.js";

const run = promisify(execFile);

export interface Commit {
  /** A `file://` URL that `git clone` accepts, as it would a hosted repository's. */
  url: string;
  sha: string;
}

let made: Promise<Commit> | undefined;

/**
 * This checkout as it is now (tracked files and new files not ignored, with their current content)
 * committed to a fresh repository under os.tmpdir(): what a user's `git clone` of this repository at
 * that commit would get, so install steps can be run against the code under test. Made once per file.
 */
export function commitOfWorkingTree(): Promise<Commit> {
  made ??= (async () => {
    const dir = await scratch("cfog-repo-");
    const { stdout } = await run("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], {
      cwd: ROOT,
      maxBuffer: 16 << 20,
    });
    for (const file of new Set(stdout.split("\0").filter(Boolean))) {
      const stat = await lstat(join(ROOT, file)).catch(() => null);
      if (!stat?.isFile()) continue;
      await mkdir(dirname(join(dir, file)), { recursive: true });
      await copyFile(join(ROOT, file), join(dir, file));
      await chmod(join(dir, file), stat.mode & 0o777);
    }
    const git = (...args: string[]) =>
      run("git", ["-c", "user.name=test", "-c", "user.email=test@example.invalid", ...args], { cwd: dir });
    await git("init", "--quiet");
    await git("add", "--all");
    await git("commit", "--quiet", "--no-gpg-sign", "-m", "the working tree under test");
    const sha = (await git("rev-parse", "HEAD")).stdout.trim();
    return { url: pathToFileURL(dir).href, sha };
  })();
  return made;
}
