import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  ExecSink,
  FileSink,
  KubernetesSink,
  SINK_TYPES,
  VaultSink,
  createSink,
  type SinkConfig,
} from "../../src/sinks/index.js";
import { ACCOUNT, captureLogger, record } from "./helpers.js";

describe("createSink", () => {
  it("builds each sink type from its config entry", () => {
    const built = [
      createSink("f", { type: "file", dir: "/srv/secrets", format: "env" }),
      createSink("e", { type: "exec", command: ["true"], read_command: ["true"], timeout_seconds: 5 }),
      createSink("v", {
        type: "vault",
        address: "http://127.0.0.1:8200",
        mount: "secret",
        path_prefix: "cf",
      }),
      createSink("k", { type: "kubernetes", namespace: "apps", api_server: "http://127.0.0.1:6443" }),
    ];
    expect(built.map((s) => s.type)).toEqual([...SINK_TYPES]);
    expect(built[0]).toBeInstanceOf(FileSink);
    expect(built[1]).toBeInstanceOf(ExecSink);
    expect(built[2]).toBeInstanceOf(VaultSink);
    expect(built[3]).toBeInstanceOf(KubernetesSink);
    expect(built[0]?.describe({ account_id: ACCOUNT, key: "web" })).toBe(
      `file:/srv/secrets/${ACCOUNT}/web.env`,
    );
  });

  it("fails at build time on what it can check without I/O", () => {
    expect(() => createSink("x", { type: "nope" } as unknown as SinkConfig)).toThrow(
      expect.objectContaining({ code: "E_SINK_CONFIG", message: "sink=x: unknown sink type 'nope'" }),
    );
    expect(() =>
      createSink("x", {
        type: "file",
        dir: tmpdir(),
        format: "json",
        age_recipients: ["ssh-ed25519 not-a-key"],
      }),
    ).toThrow(expect.objectContaining({ code: "E_SINK_CONFIG" }));
    expect(() =>
      createSink("x", { type: "vault", address: "ftp://vault", mount: "s", path_prefix: "" }),
    ).toThrow(expect.objectContaining({ code: "E_SINK_CONFIG" }));
  });

  it("passes the logger and the sink's name into log lines", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cfog-reg-"));
    try {
      const { logger, lines } = captureLogger();
      const sink = createSink("team-files", { type: "file", dir, format: "json" }, { logger });
      await sink.write({ account_id: ACCOUNT, key: "k" }, record("registry-secret"));
      expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toContainEqual(
        expect.objectContaining({
          component: "sink",
          sink: "file",
          sink_name: "team-files",
          msg: "secret written",
        }),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
