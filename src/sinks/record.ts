import { z } from "zod";
import { Secret } from "../secret.js";
import type { SecretRecord, SinkAddress, StoredRecord } from "./types.js";

/**
 * The five fields every sink stores, as plain strings, in the order they are written. Sinks share
 * this shape so that a record written by one can be compared with one read from another.
 */
export const plainRecordSchema = z.object({
  client_id: z.string(),
  client_secret: z.string(),
  account_id: z.string(),
  client_name: z.string(),
  issued_at: z.string(),
});

/** A record with its secret unwrapped: exists only inside a sink's write or read. */
export type PlainRecord = z.infer<typeof plainRecordSchema>;

/** Unwraps the secret for the one place that writes it. */
export function revealRecord(record: SecretRecord): PlainRecord {
  return {
    client_id: record.client_id,
    client_secret: record.client_secret.reveal(),
    account_id: record.account_id,
    client_name: record.client_name,
    issued_at: record.issued_at,
  };
}

/** Wraps a plain record read back from a sink. */
export function storedRecord(plain: PlainRecord, version: string | null): StoredRecord {
  return { ...plain, client_secret: new Secret(plain.client_secret), version };
}

/** `account/key`, the way sinks name an address in messages. */
export function addressLabel(address: SinkAddress): string {
  return `${address.account_id}/${address.key}`;
}
