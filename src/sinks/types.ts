import type { Secret } from "../secret.js";

/**
 * What a sink stores for one client. `client_secret` stays wrapped until the sink's own write
 * unwraps it; everything else is safe to log.
 */
export interface SecretRecord {
  account_id: string;
  client_id: string;
  client_name: string;
  client_secret: Secret;
  /** ISO time the secret was minted: the age a rotation is measured from. */
  issued_at: string;
}

/** Where in a sink a record lives: the account and the entry's `secret.key`. */
export interface SinkAddress {
  account_id: string;
  key: string;
}

/**
 * A record read back from a sink. `client_id` (and the other plain fields) are empty when the sink
 * does not store them: an exec read command may print the secret alone (src/sinks/exec-sink.ts).
 */
export interface StoredRecord extends SecretRecord {
  /** Sink-specific version (file mtime+hash, Vault version, resourceVersion) for check-and-set. */
  version: string | null;
}

/**
 * One destination for client secrets. Small on purpose (docs/DESIGN.md, "Small interfaces at the edges"): the
 * applier and the rotator need only these four operations, and each sink is tested against real
 * files or programs through this interface alone.
 */
export interface SecretSink {
  /** The sink's `type` from the config: `file`, `exec`, `vault`, `kubernetes`. */
  readonly type: string;
  /**
   * The preflight, run before anything is minted for `address`: fails (SinkError) when a write of
   * that exact key, or the read-back after it, would fail. A sink proves it the closest way it has
   * without storing a real secret: the file sink writes and reads back a probe record of the same
   * name length beside the key, kubernetes sends the write as a server-side dry run, vault asks for
   * the path's capabilities and reads the key. A secret must never wait in the journal for a
   * problem this could have seen.
   */
  checkWritable(address: SinkAddress): Promise<void>;
  /**
   * Writes the record. `expectedVersion` asks for check-and-set where the sink has versions (file,
   * vault, kubernetes): a string means "only if the stored version is still this one", `null` means
   * "only if nothing is stored"; anything else fails with SinkError `E_SINK_CONFLICT` and writes
   * nothing. Left out, the sink writes over whatever is there (vault and kubernetes still guard
   * their own read-then-write against a concurrent writer). The exec sink has no versions and passes
   * it to its command as `expected_version`.
   */
  write(
    address: SinkAddress,
    record: SecretRecord,
    expectedVersion?: string | null,
  ): Promise<{ version: string | null }>;
  /** Reads the record back; null when there is none. */
  read(address: SinkAddress): Promise<StoredRecord | null>;
  /** Where the record lives, for plans, logs and the demo: never the value. */
  describe(address: SinkAddress): string;
}

/**
 * Finds the sink a secret target names (`secret.sink` in the desired state). The wiring builds one
 * from the config's `sinks:` map (src/cli/common.ts `sinkResolver`); the applier, the secret engine and
 * the planner's age reads all take it, so it lives here with the sinks rather than with any of them.
 */
export type SinkResolver = (name: string) => SecretSink;
