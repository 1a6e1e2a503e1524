import { execFile } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** A test CA and a server certificate it signed, made with the openssl CLI. Files are PEM. */
export interface TestCertificates {
  /** The CA certificate: what a client is told to trust. */
  caFile: string;
  /** The server's key and certificate, as text, for node:https. */
  key: string;
  cert: string;
}

/**
 * Makes a fresh CA (EC P-256, valid one day) in a new directory under `parent`, and a server
 * certificate signed by it whose subjectAltName lists exactly `names` (`DNS:x` or `IP:x`). A client
 * trusts the server only with this CA, and only under one of those names.
 */
export async function makeCertificates(parent: string, names: string[]): Promise<TestCertificates> {
  const dir = await mkdtemp(join(parent, "tls-"));
  const file = (name: string) => join(dir, name);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await run("openssl", [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    file("ca-key.pem"),
    "-out",
    file("ca.pem"),
    "-days",
    "1",
    "-subj",
    "/CN=cf-oauth-gitops test CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  await run("openssl", [
    "req",
    "-new",
    ...ec,
    "-keyout",
    file("server-key.pem"),
    "-out",
    file("server.csr"),
    "-subj",
    `/CN=${names[0]?.replace(/^(DNS|IP):/, "") ?? "server"}`,
  ]);
  await writeFile(
    file("server.ext"),
    `subjectAltName=${names.join(",")}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`,
  );
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    file("server.csr"),
    "-CA",
    file("ca.pem"),
    "-CAkey",
    file("ca-key.pem"),
    "-CAcreateserial",
    "-days",
    "1",
    "-extfile",
    file("server.ext"),
    "-out",
    file("server.pem"),
  ]);
  return {
    caFile: file("ca.pem"),
    key: await readFile(file("server-key.pem"), "utf8"),
    cert: await readFile(file("server.pem"), "utf8"),
  };
}
