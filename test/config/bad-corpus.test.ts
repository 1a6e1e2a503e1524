import { readdirSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_FILE_BYTES, loadConfig, loadDesiredState } from "../../src/config/index.js";
import type { ReconcilerConfig } from "../../src/config/types.js";
import type { ConfigError } from "../../src/errors.js";
import { FIXTURES, configErrorOf, tempTree } from "./support.js";

/**
 * The bad-input corpus: test/fixtures/bad/ holds one case per failure, named after it. A file is a
 * desired-state file loaded with the shared minimal config (test/fixtures/minimal); a directory has
 * its own cf-oauth-gitops.yaml. Each row: the code, a fragment of the message, and where it points.
 */
const BAD = join(FIXTURES, "bad");

interface Case {
  code: string;
  message: string;
  /** `file:line:col`, the file named relative to test/fixtures/bad. */
  at: string;
}

const CASES: Record<string, Case> = {
  "absent-without-name-or-id.yaml": {
    code: "E_REQUIRED",
    message: "needs `client_name` or `client_id`",
    at: "absent-without-name-or-id.yaml:3:5",
  },
  "account-id-number.yaml": { code: "E_TYPE", message: "quote the value", at: "account-id-number.yaml:2:13" },
  "alias-bomb.yaml": { code: "E_ALIAS_BOMB", message: "resource-exhaustion", at: "alias-bomb.yaml:3:10" },
  "bad-account-id.yaml": {
    code: "E_BAD_ACCOUNT_ID",
    message: "`acme-production` is not an account id",
    at: "bad-account-id.yaml:2:13",
  },
  "bad-auth-method.yaml": {
    code: "E_ENUM",
    message: "did you mean `client_secret_post`?",
    at: "bad-auth-method.yaml:4:33",
  },
  "bad-client-id.yaml": {
    code: "E_BAD_CLIENT_ID",
    message: "`abc def` is not a client id",
    at: "bad-client-id.yaml:3:16",
  },
  "client-id-not-hex.yaml": {
    code: "E_BAD_CLIENT_ID",
    message: "`acme-cli-production` is not a client id (a client id is 32 lowercase hex characters)",
    at: "client-id-not-hex.yaml:4:16",
  },
  "client-id-upper-case.yaml": {
    code: "E_BAD_CLIENT_ID",
    message: "client ids are lower case",
    at: "client-id-upper-case.yaml:4:16",
  },
  "bad-ensure.yaml": {
    code: "E_ENUM",
    message: "`deleted` is not one of present, absent",
    at: "bad-ensure.yaml:4:13",
  },
  "bad-grant-type.yaml": {
    code: "E_ENUM",
    message: "`client_credentials` is not one of",
    at: "bad-grant-type.yaml:5:39",
  },
  "bad-response-type.yaml": {
    code: "E_ENUM",
    message: "did you mean `id_token`?",
    at: "bad-response-type.yaml:6:28",
  },
  "bad-rotation-duration.yaml": {
    code: "E_BAD_DURATION",
    message: "`90 days` is not a duration",
    at: "bad-rotation-duration.yaml:10:14",
  },
  "bad-visibility.yaml": {
    code: "E_ENUM",
    message: "`internal` is not one of public, private",
    at: "bad-visibility.yaml:9:17",
  },
  "binary-garbage.yaml": { code: "E_BINARY", message: "NUL bytes", at: "binary-garbage.yaml:3:1" },
  "camel-case-key.yaml": {
    code: "E_UNKNOWN_KEY",
    message: "did you mean `token_endpoint_auth_method`?",
    at: "camel-case-key.yaml:4:5",
  },
  "client-name-number.yaml": {
    code: "E_TYPE",
    message: "expected a string, got an integer",
    at: "client-name-number.yaml:3:18",
  },
  "client-name-dot-dot.yaml": {
    code: "E_BAD_SECRET_KEY",
    message:
      "sink `default` cannot store client_name `..` (the secret key when `secret.key` is not set): it cannot be used as a file name",
    at: "client-name-dot-dot.yaml:3:18",
  },
  "client-name-too-long.yaml": {
    code: "E_BAD_SECRET_KEY",
    message:
      "it makes a file name of 245 bytes, over the limit of 229 (its temporary file must fit 255 bytes)",
    at: "client-name-too-long.yaml:3:18",
  },
  "client-secret-in-desired-file.yaml": {
    code: "E_UNKNOWN_KEY",
    message: "secrets are never written in desired-state files",
    at: "client-secret-in-desired-file.yaml:4:5",
  },
  "client-uri-not-a-url.yaml": {
    code: "E_BAD_URL",
    message: "`www.example.com` is not an absolute http(s) URL",
    at: "client-uri-not-a-url.yaml:9:17",
  },
  "clients-not-a-list.yaml": {
    code: "E_TYPE",
    message: "expected a list, got a mapping",
    at: "clients-not-a-list.yaml:3:3",
  },
  "colon-scope.yaml": {
    code: "E_COLON_SCOPE",
    message: "`account:read` is colon-delimited",
    at: "colon-scope.yaml:10:9",
  },
  "comments-only.yaml": { code: "E_EMPTY_FILE", message: "`clients: []`", at: "comments-only.yaml:1:1" },
  "config-age-without-identity": {
    code: "E_AGE_NEEDS_IDENTITY",
    message: "`age_recipients` needs `age_identity_file`",
    at: "config-age-without-identity/cf-oauth-gitops.yaml:8:5",
  },
  "config-bad-cron": {
    code: "E_BAD_CRON",
    message: "`0 3 * *` is not a cron expression",
    at: "config-bad-cron/cf-oauth-gitops.yaml:5:13",
  },
  "config-bad-duration": {
    code: "E_BAD_DURATION",
    message: "`10 minutes` is not a duration",
    at: "config-bad-duration/cf-oauth-gitops.yaml:4:11",
  },
  "config-bad-prune": {
    code: "E_ENUM",
    message: "`everything` is not one of none, owned, all",
    at: "config-bad-prune/cf-oauth-gitops.yaml:4:8",
  },
  "config-bad-timezone": {
    code: "E_BAD_TIMEZONE",
    message: "`CEST` is not an IANA time zone",
    at: "config-bad-timezone/cf-oauth-gitops.yaml:5:13",
  },
  "config-empty": {
    code: "E_EMPTY_FILE",
    message: "config file is empty",
    at: "config-empty/cf-oauth-gitops.yaml:1:1",
  },
  "config-exec-command-string": {
    code: "E_TYPE",
    message: "expected a list, got a string",
    at: "config-exec-command-string/cf-oauth-gitops.yaml:7:14",
  },
  "config-exec-no-read-command": {
    code: "E_REQUIRED",
    message: "`read_command` is required",
    at: "config-exec-no-read-command/cf-oauth-gitops.yaml:6:5",
  },
  "config-git-key-with-https-url": {
    code: "E_GIT_CREDENTIALS",
    message: "an ssh key is used with an ssh URL only",
    at: "config-git-key-with-https-url/cf-oauth-gitops.yaml:7:5",
  },
  "config-git-ssh-key-without-known-hosts": {
    code: "E_GIT_KNOWN_HOSTS",
    message: "`ssh_key_file` needs `known_hosts_file`",
    at: "config-git-ssh-key-without-known-hosts/cf-oauth-gitops.yaml:7:5",
  },
  "config-git-token-with-ssh-url": {
    code: "E_GIT_CREDENTIALS",
    message: "a token is sent over http(s) only",
    at: "config-git-token-with-ssh-url/cf-oauth-gitops.yaml:7:5",
  },
  "config-missing-desired": {
    code: "E_REQUIRED",
    message: "`desired` is required",
    at: "config-missing-desired/cf-oauth-gitops.yaml:2:1",
  },
  "config-multiple-documents": {
    code: "E_MULTIPLE_DOCUMENTS",
    message: "one YAML document",
    at: "config-multiple-documents/cf-oauth-gitops.yaml:5:1",
  },
  "config-no-default-sink": {
    code: "E_UNKNOWN_SINK",
    message: "no `default` sink",
    at: "config-no-default-sink/desired/clients.yaml:2:5",
  },
  "config-sink-bad-type": {
    code: "E_ENUM",
    message: "`s3` is not one of file, exec, vault, kubernetes",
    at: "config-sink-bad-type/cf-oauth-gitops.yaml:6:11",
  },
  "config-unknown-key": {
    code: "E_UNKNOWN_KEY",
    message: "unknown key `prun`; did you mean `prune`?",
    at: "config-unknown-key/cf-oauth-gitops.yaml:4:1",
  },
  "config-webhook-unsigned": {
    code: "E_REQUIRED",
    message: "`secret_env` or `secret_file`",
    at: "config-webhook-unsigned/cf-oauth-gitops.yaml:4:10",
  },
  "config-yes-as-boolean": {
    code: "E_TYPE",
    message: "reads yes/no/on/off as strings",
    at: "config-yes-as-boolean/cf-oauth-gitops.yaml:5:16",
  },
  "cors-origin-with-path.yaml": {
    code: "E_BAD_URL",
    message: "did you mean `https://app.example.com`?",
    at: "cors-origin-with-path.yaml:10:9",
  },
  "deeply-nested.yaml": { code: "E_TOO_DEEP", message: "too deep", at: "deeply-nested.yaml:2:1" },
  "desired-missing": {
    code: "E_DESIRED_MISSING",
    message: "desired-missing/clients does not exist",
    at: "desired-missing/cf-oauth-gitops.yaml:3:10",
  },
  "duplicate-key.yaml": { code: "E_DUPLICATE_KEY", message: "duplicate key", at: "duplicate-key.yaml:9:5" },
  "duplicate-name-across-files": {
    code: "E_DUPLICATE_NAME",
    message:
      "`shared-app` in account 0123456789abcdef0123456789abcdef is declared twice: first at duplicate-name-across-files/desired/a.yaml:2:18",
    at: "duplicate-name-across-files/desired/b.yaml:8:18",
  },
  "duplicate-name-same-file.yaml": {
    code: "E_DUPLICATE_NAME",
    message: "first at duplicate-name-same-file.yaml:3:18",
    at: "duplicate-name-same-file.yaml:10:18",
  },
  "empty-client-name.yaml": {
    code: "E_EMPTY_NAME",
    message: "client_name cannot be empty",
    at: "empty-client-name.yaml:3:18",
  },
  "empty-file.yaml": { code: "E_EMPTY_FILE", message: "file has no content", at: "empty-file.yaml:1:1" },
  "entry-not-a-mapping.yaml": {
    code: "E_TYPE",
    message: "expected a mapping, got a string",
    at: "entry-not-a-mapping.yaml:3:5",
  },
  "half-written-file.yaml": {
    code: "E_YAML_SYNTAX",
    message: "missing closing",
    at: "half-written-file.yaml:7:49",
  },
  "logo-uri-not-http.yaml": {
    code: "E_BAD_URL",
    message: "must be an http:// or https:// URL",
    at: "logo-uri-not-http.yaml:9:15",
  },
  "missing-account": {
    code: "E_NO_ACCOUNT",
    message: "no `account_id`",
    at: "missing-account/desired.yaml:2:1",
  },
  "missing-clients-key.yaml": {
    code: "E_REQUIRED",
    message: "`clients` is required",
    at: "missing-clients-key.yaml:2:1",
  },
  "missing-required-field.yaml": {
    code: "E_REQUIRED",
    message: "`redirect_uris` is required",
    at: "missing-required-field.yaml:3:5",
  },
  "no-authorization-code.yaml": {
    code: "E_NO_AUTHORIZATION_CODE",
    message: "must contain authorization_code",
    at: "no-authorization-code.yaml:5:18",
  },
  "not-utf8.yaml": { code: "E_NOT_UTF8", message: "not valid UTF-8", at: "not-utf8.yaml:3:21" },
  "null-field.yaml": {
    code: "E_TYPE",
    message: "expected a string, got an empty value",
    at: "null-field.yaml:9:5",
  },
  "offline-access-as-optional-scope.yaml": {
    code: "E_PROTOCOL_SCOPE_OPTIONAL",
    message: "`offline_access` is a protocol scope",
    at: "offline-access-as-optional-scope.yaml:10:9",
  },
  "openid-as-optional-scope.yaml": {
    code: "E_PROTOCOL_SCOPE_OPTIONAL",
    message: "`openid` is a protocol scope",
    at: "openid-as-optional-scope.yaml:9:23",
  },
  "optional-scope-not-in-scopes.yaml": {
    code: "E_OPTIONAL_SCOPE_NOT_IN_SCOPES",
    message: "`dns-records.write` must also be listed in `scopes`",
    at: "optional-scope-not-in-scopes.yaml:9:34",
  },
  "pinned-id-twice": {
    code: "E_DUPLICATE_CLIENT_ID",
    message: "is pinned twice: first at pinned-id-twice/desired/one.yaml:3:16",
    at: "pinned-id-twice/desired/two.yaml:4:16",
  },
  "pinned-id-twice-same-file.yaml": {
    code: "E_DUPLICATE_CLIENT_ID",
    message: "first at pinned-id-twice-same-file.yaml:4:16",
    at: "pinned-id-twice-same-file.yaml:7:16",
  },
  "present-and-absent": {
    code: "E_PRESENT_AND_ABSENT",
    message: "is absent here but present at present-and-absent/desired/apps.yaml:2:18",
    at: "present-and-absent/desired/cleanup.yaml:5:18",
  },
  "present-and-absent-same-file.yaml": {
    code: "E_PRESENT_AND_ABSENT",
    message: "is absent here but present at present-and-absent-same-file.yaml:3:18",
    at: "present-and-absent-same-file.yaml:9:18",
  },
  "redirect-uri-missing-scheme.yaml": {
    code: "E_BAD_URL",
    message: "missing a scheme",
    at: "redirect-uri-missing-scheme.yaml:7:21",
  },
  "redirect-uri-relative.yaml": {
    code: "E_BAD_URL",
    message: "`/oauth/callback` is not an absolute URL",
    at: "redirect-uri-relative.yaml:9:9",
  },
  "redirect-uri-with-fragment.yaml": {
    code: "E_BAD_URL",
    message: "must not contain a fragment",
    at: "redirect-uri-with-fragment.yaml:7:21",
  },
  "rotation-duration-number.yaml": {
    code: "E_BAD_DURATION",
    message: "got an integer (write `3600s`",
    at: "rotation-duration-number.yaml:9:35",
  },
  "rotation-grace-not-shorter.yaml": {
    code: "E_BAD_ROTATION",
    message: "grace (7d) must be shorter than rotation every (7d)",
    at: "rotation-grace-not-shorter.yaml:9:15",
  },
  "rotation-true.yaml": {
    code: "E_TYPE",
    message: "expected `false` or a mapping, got `true`",
    at: "rotation-true.yaml:9:15",
  },
  "scope-with-spaces.yaml": {
    code: "E_BAD_SCOPE",
    message: "list one scope per item",
    at: "scope-with-spaces.yaml:8:14",
  },
  "scopes-not-a-list.yaml": {
    code: "E_TYPE",
    message: "expected a list, got a string",
    at: "scopes-not-a-list.yaml:8:13",
  },
  "second-document-bad.yaml": {
    code: "E_UNKNOWN_KEY",
    message: "unknown key `extra`",
    at: "second-document-bad.yaml:9:5",
  },
  "secret-key-collision.yaml": {
    code: "E_DUPLICATE_SECRET_KEY",
    message: "key `shared` (the other is at secret-key-collision.yaml:9:13)",
    at: "secret-key-collision.yaml:16:13",
  },
  "secret-key-collision-kubernetes": {
    code: "E_DUPLICATE_SECRET_KEY",
    message:
      "one place, kubernetes Secret oauth/cf-billing-web: sink `default` key `billing-web` here, and sink `default` key `billing_web` (the other is at secret-key-collision-kubernetes/desired/clients.yaml:2:18)",
    at: "secret-key-collision-kubernetes/desired/clients.yaml:8:18",
  },
  "secret-key-collision-shared-dir": {
    code: "E_DUPLICATE_SECRET_KEY",
    message:
      "one place, file secret-key-collision-shared-dir/secrets/0123456789abcdef0123456789abcdef/web.json: sink `backup` key `web` here, and sink `default` key `web` (the other is at secret-key-collision-shared-dir/desired/clients.yaml:2:18)",
    at: "secret-key-collision-shared-dir/desired/clients.yaml:14:13",
  },
  "secret-key-traversal.yaml": {
    code: "E_BAD_SECRET_KEY",
    message: "must not contain `..`",
    at: "secret-key-traversal.yaml:9:19",
  },
  "tab-indentation.yaml": {
    code: "E_YAML_SYNTAX",
    message: "tabs are not allowed",
    at: "tab-indentation.yaml:3:1",
  },
  "top-level-list.yaml": {
    code: "E_TYPE",
    message: "is a mapping with `account_id` and `clients`",
    at: "top-level-list.yaml:2:1",
  },
  "unclosed-flow-sequence.yaml": {
    code: "E_YAML_SYNTAX",
    message: "end with a ]",
    at: "unclosed-flow-sequence.yaml:5:5",
  },
  "unknown-key-typo.yaml": {
    code: "E_UNKNOWN_KEY",
    message: "unknown key `scope`; did you mean `scopes`?",
    at: "unknown-key-typo.yaml:9:5",
  },
  "unknown-sink.yaml": {
    code: "E_UNKNOWN_SINK",
    message: "no sink named `vualt` in the config; did you mean `vault`?",
    at: "unknown-sink.yaml:10:13",
  },
  "unknown-top-level-key.yaml": {
    code: "E_UNKNOWN_KEY",
    message: "did you mean `clients`?",
    at: "unknown-top-level-key.yaml:3:1",
  },
  "unresolved-alias.yaml": {
    code: "E_UNRESOLVED_ALIAS",
    message: "`*callbacks` has no anchor",
    at: "unresolved-alias.yaml:7:20",
  },
  "unresolved-merge-alias.yaml": {
    code: "E_YAML_SYNTAX",
    message: "merge sources must be maps",
    at: "unresolved-merge-alias.yaml:3:9",
  },
  "url-with-credentials.yaml": {
    code: "E_BAD_URL",
    message: "must not contain a user name or password",
    at: "url-with-credentials.yaml:9:17",
  },
  "utf16-file.yaml": { code: "E_BINARY", message: "UTF-16", at: "utf16-file.yaml:1:1" },
};

let shared: ReconcilerConfig;
beforeAll(async () => {
  shared = await loadConfig("minimal/cf-oauth-gitops.yaml", { cwd: FIXTURES });
});

/** Loads one case the way `validate` would; file names in issues are relative to test/fixtures/bad. */
async function runCase(name: string): Promise<ConfigError> {
  const path = join(BAD, name);
  if (statSync(path).isDirectory()) {
    return configErrorOf(loadConfig(join(name, "cf-oauth-gitops.yaml"), { cwd: BAD }).then(loadDesiredState));
  }
  return configErrorOf(loadDesiredState({ ...shared, desired: path, display_root: BAD }));
}

describe("bad-input corpus", () => {
  it("has a table row for every case on disk, and at least 42 cases", () => {
    const onDisk = readdirSync(BAD).sort();
    expect(onDisk).toEqual(Object.keys(CASES).sort());
    expect(onDisk.length).toBeGreaterThanOrEqual(42);
  });

  it.each(Object.entries(CASES))("%s", async (name, expected) => {
    const error = await runCase(name);
    const located = error.issues.map((i) => ({
      code: i.code,
      at: `${i.file}:${i.line}:${i.col}`,
      message: i.message,
    }));
    expect(located).toContainEqual({
      code: expected.code,
      at: expected.at,
      message: expect.stringContaining(expected.message),
    });
    // The thrown message carries the same located line, as the CLI prints it.
    expect(error.message).toContain(`${expected.at}: `);
    expect(error.message).toContain(`[${expected.code}]`);
  });

  it("never echoes a secret or a password from the input", async () => {
    for (const name of ["client-secret-in-desired-file.yaml", "url-with-credentials.yaml"]) {
      const error = await runCase(name);
      expect(error.message).not.toMatch(/s3cr3t|hunter2/);
      expect(JSON.stringify(error.issues)).not.toMatch(/s3cr3t|hunter2/);
    }
  });
});

describe("size limit", () => {
  let cleanup: (() => Promise<void>) | undefined;
  afterAll(async () => cleanup?.());

  it("refuses a 50 MB desired file before parsing it", async () => {
    const made = await tempTree({});
    cleanup = made.cleanup;
    const path = join(made.dir, "huge-file.yaml");
    // Real YAML, so that size is the only thing wrong with it.
    const handle = await open(path, "w");
    const chunk = Buffer.from(
      `clients:\n${"  - client_name: filler\n    ensure: absent\n".repeat(100_000)}`.slice(0, 1024 * 1024),
    );
    for (let i = 0; i < 50; i++) await handle.write(chunk);
    await handle.close();
    expect(statSync(path).size).toBeGreaterThan(MAX_FILE_BYTES);

    const error = await configErrorOf(loadDesiredState({ ...shared, desired: path, display_root: made.dir }));
    expect(error.issues).toEqual([
      {
        file: "huge-file.yaml",
        line: 1,
        col: 1,
        path: "",
        code: "E_TOO_LARGE",
        message: expect.stringContaining("50.0 MiB"),
      },
    ]);
  });
});
