import { createHash, generateKeyPairSync, sign, verify, type JsonWebKey, type KeyObject } from "node:crypto";
import { ID_TOKEN_SIGNING } from "./behaviour.js";

/**
 * The authorization server's id_token signing key (docs/API-BEHAVIOUR.md, "The OAuth authorization
 * server"; algorithm and size in src/emulator/behaviour.ts, `ID_TOKEN_SIGNING`), made with node:crypto
 * at its first use so that an emulator nobody logs in to never pays for an RSA key. It lives as long
 * as the emulator: a restarted emulator publishes a new key, as it forgets every token anyway.
 */

/** A public key as `/.well-known/jwks.json` lists it. */
export type PublicJwk = JsonWebKey & { kid: string; use: "sig"; alg: string };

export class SigningKey {
  #key: { privateKey: KeyObject; publicKey: KeyObject; jwk: PublicJwk } | undefined;

  /** `{keys: [jwk]}`, the JWKS document. */
  jwks(): { keys: PublicJwk[] } {
    return { keys: [this.#get().jwk] };
  }

  /** A compact JWS of `claims` (a JWT), with the key's `kid` in the header. */
  signJwt(claims: Record<string, unknown>): string {
    const { privateKey, jwk } = this.#get();
    const header = { alg: ID_TOKEN_SIGNING.alg, typ: "JWT", kid: jwk.kid };
    const input = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(claims))}`;
    return `${input}.${sign("sha256", Buffer.from(input), privateKey).toString("base64url")}`;
  }

  /** The claims of a JWT this key signed (checked against the key), or undefined. */
  verifiedClaims(jwt: string): Record<string, unknown> | undefined {
    if (this.#key === undefined) return undefined;
    const [h, p, s] = jwt.split(".");
    if (h === undefined || p === undefined || s === undefined) return undefined;
    const signed = Buffer.from(`${h}.${p}`);
    if (!verify("sha256", signed, this.#key.publicKey, Buffer.from(s, "base64url"))) return undefined;
    try {
      const claims = JSON.parse(Buffer.from(p, "base64url").toString("utf8")) as unknown;
      return typeof claims === "object" && claims !== null ? (claims as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  }

  #get(): { privateKey: KeyObject; publicKey: KeyObject; jwk: PublicJwk } {
    if (this.#key === undefined) {
      const { privateKey, publicKey } = generateKeyPairSync("rsa", {
        modulusLength: ID_TOKEN_SIGNING.modulusLength,
      });
      const exported = publicKey.export({ format: "jwk" });
      // RFC 7638: the thumbprint of the required members, in lexicographic order.
      const thumbprint = createHash("sha256")
        .update(JSON.stringify({ e: exported.e, kty: exported.kty, n: exported.n }))
        .digest("base64url");
      this.#key = {
        privateKey,
        publicKey,
        jwk: { ...exported, kid: thumbprint, use: "sig", alg: ID_TOKEN_SIGNING.alg },
      };
    }
    return this.#key;
  }
}

function b64(text: string): string {
  return Buffer.from(text).toString("base64url");
}
