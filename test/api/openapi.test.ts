import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type {
  OAuthClientCreateParams,
  OAuthClientGetResponse,
  OAuthClientUpdateParams,
} from "cloudflare/resources/iam/oauth-clients";
import { z } from "zod";
import { describe, expect, expectTypeOf, it } from "vitest";
import { apiMessageSchema } from "../../src/api/envelope.js";
import {
  GRANT_TYPES,
  OPTIONAL_FIELDS,
  PROTOCOL_SCOPES,
  READ_ONLY_FIELDS,
  REQUIRED_FIELDS,
  RESPONSE_TYPES,
  TOKEN_ENDPOINT_AUTH_METHODS,
  UPDATE_FIELDS,
  VERIFICATION_STATUSES,
  VISIBILITIES,
  WRITABLE_FIELD_SCHEMAS,
  WRITABLE_FIELDS,
  createClientBodySchema,
  createdClientSchema,
  liveClientListSchema,
  liveClientSchema,
  rotateSecretResultSchema,
  scopeListSchema,
  updateClientBodySchema,
} from "../../src/api/oauth-clients.js";
import {
  compareLists,
  compareShapes,
  openApiShape,
  requestBodyOf,
  resultOf,
  zodShape,
  type OpenApiDocument,
  type Shape,
} from "./openapi-compare.js";

/**
 * The API model (src/api) against Cloudflare's OpenAPI document (docs/api/oauth-clients.openapi.json),
 * field by field: property names, types, nullability, enum values and required fields of every request
 * body and result, and the model's field and value lists. The model may differ from the document only
 * by an exception listed below with its reason; an exception that no longer occurs fails too, so the
 * list cannot go stale. The emulator and the client both build on this model, so a field list that is
 * wrong in both is caught here rather than by neither.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const doc = JSON.parse(
  readFileSync(resolve(ROOT, "docs/api/oauth-clients.openapi.json"), "utf8"),
) as OpenApiDocument;

const CLIENTS = "/accounts/{account_id}/oauth_clients";
const CLIENT = `${CLIENTS}/{oauth_client_id}`;
const ROTATE = `${CLIENT}/rotate_secret`;
const SCOPES = "/oauth/scopes";

/**
 * `optional_scopes` is missing from the OpenAPI subset but is part of the API: the official SDK
 * (devDependency `cloudflare` 7.3, which docs/API-BEHAVIOUR.md names as the first version with it)
 * declares it on the create and update parameters and on every client response, checked at compile
 * time below.
 */
const OPTIONAL_SCOPES_UNDOCUMENTED = "optional_scopes: in the model, not in the document";

/**
 * A PATCH clears an optional field with `null` (docs/API-BEHAVIOUR.md, "Update"); the document
 * declares no field nullable. Required fields cannot be cleared, so they stay non-nullable.
 */
const NULL_CLEARS = [
  "allowed_cors_origins",
  "client_uri",
  "logo_uri",
  "policy_uri",
  "post_logout_redirect_uris",
  "tos_uri",
].map((field) => `${field}: nullable in the model, not in the document`);

/** Every schema the model holds, the document's counterpart, and the listed exceptions. */
const SCHEMAS: Array<{ name: string; model: z.ZodType; document: () => Shape; exceptions: string[] }> = [
  {
    name: "create body (POST oauth_clients)",
    model: createClientBodySchema,
    document: () => requestBodyOf(doc, CLIENTS, "post"),
    exceptions: [OPTIONAL_SCOPES_UNDOCUMENTED],
  },
  {
    name: "update body (PATCH oauth_clients/{id})",
    model: updateClientBodySchema,
    document: () => requestBodyOf(doc, CLIENT, "patch"),
    exceptions: [OPTIONAL_SCOPES_UNDOCUMENTED, ...NULL_CLEARS],
  },
  {
    name: "client (GET oauth_clients/{id})",
    model: liveClientSchema,
    document: () => resultOf(doc, CLIENT, "get"),
    exceptions: [OPTIONAL_SCOPES_UNDOCUMENTED],
  },
  {
    name: "client (PATCH oauth_clients/{id})",
    model: liveClientSchema,
    document: () => resultOf(doc, CLIENT, "patch"),
    exceptions: [OPTIONAL_SCOPES_UNDOCUMENTED],
  },
  {
    name: "client list (GET oauth_clients)",
    model: liveClientListSchema,
    document: () => resultOf(doc, CLIENTS, "get"),
    exceptions: [`[].${OPTIONAL_SCOPES_UNDOCUMENTED}`],
  },
  {
    name: "created client with secret (POST oauth_clients)",
    model: createdClientSchema,
    document: () => resultOf(doc, CLIENTS, "post"),
    exceptions: [OPTIONAL_SCOPES_UNDOCUMENTED],
  },
  {
    name: "rotate result (POST rotate_secret)",
    model: rotateSecretResultSchema,
    document: () => resultOf(doc, ROTATE, "post"),
    // The whole point of rotate_secret is the new secret it returns once (docs/API-BEHAVIOUR.md,
    // Secrets and rotation); an answer without it means the secret is lost, which the client must
    // report rather than accept.
    exceptions: ["client_secret: required in the model, optional in the document"],
  },
  {
    name: "scope list (GET oauth/scopes)",
    model: scopeListSchema,
    document: () => resultOf(doc, SCOPES, "get"),
    exceptions: [],
  },
  {
    name: "error and message entries (iam_messages-2)",
    model: apiMessageSchema,
    document: () => openApiShape(doc, (doc.components.schemas["iam_messages-2"] as { items: unknown }).items),
    exceptions: [],
  },
];

const component = (name: string) => openApiShape(doc, doc.components.schemas[name], name);
const clientObject = () => resultOf(doc, CLIENT, "get");

describe("the API model against the OpenAPI document", () => {
  it.each(SCHEMAS)("$name matches, but for the listed exceptions", ({ model, document, exceptions }) => {
    expect(compareShapes(zodShape(model), document())).toEqual([...exceptions].sort());
  });

  it("enums match the document's", () => {
    const enumOf = (shape: Shape | undefined) => shape?.enum ?? [];
    const client = clientObject().properties ?? {};
    expect(compareLists(GRANT_TYPES, enumOf(component("iam_oauth_client_grant_types").items))).toEqual([]);
    expect(compareLists(RESPONSE_TYPES, enumOf(component("iam_oauth_client_response_types").items))).toEqual(
      [],
    );
    expect(
      compareLists(
        TOKEN_ENDPOINT_AUTH_METHODS,
        enumOf(component("iam_oauth_client_token_endpoint_auth_method")),
      ),
    ).toEqual([]);
    expect(compareLists(VISIBILITIES, enumOf(client["visibility"]))).toEqual([]);
    expect(
      compareLists(
        VERIFICATION_STATUSES,
        enumOf(component("iam_oauth_client_uri_verification").properties?.status),
      ),
    ).toEqual([]);
  });

  it("the field lists match: writable, required, optional, patchable, read-only", () => {
    const create = requestBodyOf(doc, CLIENTS, "post");
    const update = requestBodyOf(doc, CLIENT, "patch");
    const client = clientObject();
    const documentRequired = create.required ?? [];
    const documentWritable = Object.keys(create.properties ?? {});
    expect(compareLists(WRITABLE_FIELDS, documentWritable)).toEqual([OPTIONAL_SCOPES_UNDOCUMENTED]);
    expect(compareLists(REQUIRED_FIELDS, documentRequired)).toEqual([]);
    expect(
      compareLists(
        OPTIONAL_FIELDS,
        documentWritable.filter((f) => !documentRequired.includes(f)),
      ),
    ).toEqual([OPTIONAL_SCOPES_UNDOCUMENTED]);
    expect(compareLists(UPDATE_FIELDS, Object.keys(update.properties ?? {}))).toEqual([
      OPTIONAL_SCOPES_UNDOCUMENTED,
    ]);
    const readOnly = Object.entries(client.properties ?? {})
      .filter(([, shape]) => shape.readOnly)
      .map(([name]) => name);
    expect(compareLists(READ_ONLY_FIELDS, readOnly)).toEqual([]);
  });

  it("the protocol scopes are the ones the `scopes` description says the server manages", () => {
    const description = String(
      (doc.components.schemas["iam_oauth_client_common"] as { properties: Record<string, Json> }).properties
        .scopes?.["description"],
    );
    const sentence = /Protocol scopes (.*?) are added or removed automatically/.exec(description)?.[1] ?? "";
    const named = [...sentence.matchAll(/`([^`]+)`/g)].map((m) => m[1] as string);
    expect(named.length).toBeGreaterThan(0);
    expect(compareLists(PROTOCOL_SCOPES, named)).toEqual([]);
  });

  it("the undocumented optional_scopes exception is backed by the official SDK's types", () => {
    expectTypeOf<OAuthClientCreateParams["optional_scopes"]>().toEqualTypeOf<string[] | undefined>();
    expectTypeOf<OAuthClientUpdateParams["optional_scopes"]>().toEqualTypeOf<string[] | undefined>();
    expectTypeOf<OAuthClientGetResponse["optional_scopes"]>().toEqualTypeOf<string[] | undefined>();
  });
});

type Json = Record<string, unknown>;

describe("the comparison reports a wrong model", () => {
  const createDocument = () => requestBodyOf(doc, CLIENTS, "post");

  it("a field the document does not have", () => {
    const wrong = createClientBodySchema.extend({ client_colour: z.string().optional() });
    expect(compareShapes(zodShape(wrong), createDocument())).toContain(
      "client_colour: in the model, not in the document",
    );
    const fields = [...WRITABLE_FIELDS, "client_colour"];
    expect(compareLists(fields, Object.keys(createDocument().properties ?? {}))).toContain(
      "client_colour: in the model, not in the document",
    );
  });

  it("a documented field the model lost", () => {
    const wrong = createClientBodySchema.omit({ logo_uri: true });
    expect(compareShapes(zodShape(wrong), createDocument())).toContain(
      "logo_uri: in the document, not in the model",
    );
    const fields = WRITABLE_FIELDS.filter((f) => f !== "tos_uri");
    expect(compareLists(fields, Object.keys(createDocument().properties ?? {}))).toContain(
      "tos_uri: in the document, not in the model",
    );
  });

  it("a wrong type, a wrong nullability, a wrong enum and a wrong required flag", () => {
    const wrong = createClientBodySchema.extend({
      client_name: z.array(z.string()),
      logo_uri: WRITABLE_FIELD_SCHEMAS.logo_uri.nullable().optional(),
      grant_types: z.array(z.enum([...GRANT_TYPES, "implicit"])),
      scopes: WRITABLE_FIELD_SCHEMAS.scopes.optional(),
    });
    expect(compareShapes(zodShape(wrong), createDocument())).toEqual(
      [
        OPTIONAL_SCOPES_UNDOCUMENTED,
        "client_name: type array in the model, string in the document",
        "logo_uri: nullable in the model, not in the document",
        "grant_types[]: enum [authorization_code, implicit, refresh_token] in the model, [authorization_code, refresh_token] in the document",
        "scopes: optional in the model, required in the document",
      ].sort(),
    );
  });

  it("a wrong required-field list and a nested field in the client object", () => {
    const required = REQUIRED_FIELDS.filter((f) => f !== "scopes");
    expect(compareLists(required, createDocument().required ?? [])).toEqual([
      "scopes: in the document, not in the model",
    ]);
    const wrong = liveClientSchema.extend({
      client_uri_verification: z.object({
        status: z.enum(["pending", "verified"]),
        text: z.string().optional(),
      }),
    });
    expect(compareShapes(zodShape(wrong), clientObject())).toEqual(
      [
        OPTIONAL_SCOPES_UNDOCUMENTED,
        "client_uri_verification.status: enum [pending, verified] in the model, [failed, in_progress, pending, verified] in the document",
        "client_uri_verification.status: required in the model, optional in the document",
        "client_uri_verification: required in the model, optional in the document",
      ].sort(),
    );
  });
});
