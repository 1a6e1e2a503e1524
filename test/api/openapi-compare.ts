import { z } from "zod";

/**
 * Compares a zod schema of src/api with a schema of Cloudflare's OpenAPI document, field by field.
 * Both sides are first reduced to the same small shape (type, nullable, enum, items, properties,
 * required), so the comparison sees only what the model claims about the API: names, types, enum
 * values and which fields are required. Formats, lengths and descriptions are not compared.
 *
 * The zod side goes through zod's own JSON Schema export (`z.toJSONSchema`), so what is compared is
 * what the schema actually accepts, not how it was written.
 */

export interface Shape {
  type: string;
  nullable: boolean;
  enum?: string[];
  items?: Shape;
  properties?: Record<string, Shape>;
  required?: string[];
  /** OpenAPI `readOnly`; always false on the zod side. */
  readOnly: boolean;
}

type Json = Record<string, unknown>;

/** The parsed OpenAPI document: only what the reducer reads. */
export interface OpenApiDocument {
  paths: Record<string, Record<string, Json>>;
  components: { schemas: Record<string, Json> };
}

function asObject(value: unknown, where: string): Json {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`${where}: expected an object in the OpenAPI document`);
  }
  return value as Json;
}

/** Follows `$ref` (local `#/components/schemas/...` only); sibling keys win over the referenced ones. */
export function resolveRef(doc: OpenApiDocument, node: Json): Json {
  const ref = node["$ref"];
  if (typeof ref !== "string") return node;
  const name = ref.replace(/^#\/components\/schemas\//, "");
  const target = doc.components.schemas[name];
  if (target === undefined) throw new Error(`unresolved $ref ${ref}`);
  const { $ref: _ref, ...siblings } = node;
  return { ...resolveRef(doc, target), ...siblings };
}

/** Reduces an OpenAPI 3.0 schema node to a {@link Shape}. */
export function openApiShape(doc: OpenApiDocument, node: unknown, where = "(schema)"): Shape {
  const n = resolveRef(doc, asObject(node, where));
  const shape: Shape = {
    type: typeof n["type"] === "string" ? n["type"] : "any",
    nullable: n["nullable"] === true,
    readOnly: n["readOnly"] === true,
  };
  if (Array.isArray(n["enum"])) shape.enum = n["enum"].map(String);
  if (n["items"] !== undefined) shape.items = openApiShape(doc, n["items"], `${where}[]`);
  if (n["properties"] !== undefined) {
    shape.properties = {};
    for (const [key, value] of Object.entries(asObject(n["properties"], where))) {
      shape.properties[key] = openApiShape(doc, value, `${where}.${key}`);
    }
    shape.required = Array.isArray(n["required"]) ? n["required"].map(String) : [];
  }
  return shape;
}

/** Reduces a JSON Schema node (zod's export) to a {@link Shape}. */
function jsonSchemaShape(node: Json): Shape {
  const anyOf = node["anyOf"];
  if (Array.isArray(anyOf)) {
    const members = anyOf as Json[];
    const others = members.filter((m) => m["type"] !== "null");
    if (others.length === 1 && others.length < members.length) {
      return { ...jsonSchemaShape(others[0] as Json), nullable: true };
    }
    return { type: "union", nullable: false, readOnly: false };
  }
  let type = node["type"];
  let nullable = false;
  if (Array.isArray(type)) {
    nullable = type.includes("null");
    const rest = type.filter((t) => t !== "null");
    type = rest.length === 1 ? rest[0] : rest.join("|");
  }
  const shape: Shape = { type: typeof type === "string" ? type : "any", nullable, readOnly: false };
  if (Array.isArray(node["enum"])) shape.enum = node["enum"].map(String);
  if (node["const"] !== undefined) shape.enum = [String(node["const"])];
  if (node["items"] !== undefined) shape.items = jsonSchemaShape(node["items"] as Json);
  if (node["properties"] !== undefined) {
    shape.properties = {};
    for (const [key, value] of Object.entries(node["properties"] as Json)) {
      shape.properties[key] = jsonSchemaShape(value as Json);
    }
    shape.required = Array.isArray(node["required"]) ? node["required"].map(String) : [];
  }
  return shape;
}

/** Reduces a zod schema to a {@link Shape}. */
export function zodShape(schema: z.ZodType): Shape {
  return jsonSchemaShape(z.toJSONSchema(schema, { unrepresentable: "any" }) as Json);
}

const list = (values: readonly string[]) => `[${[...values].sort().join(", ")}]`;

/**
 * Every difference between the model's shape and the document's, one line each, `path: what`, sorted.
 * An empty list means the model says exactly what the document says.
 */
export function compareShapes(model: Shape, document: Shape, path = ""): string[] {
  const at = path === "" ? "(root)" : path;
  const out: string[] = [];
  if (model.type !== document.type) {
    out.push(`${at}: type ${model.type} in the model, ${document.type} in the document`);
  }
  if (model.nullable !== document.nullable) {
    out.push(
      model.nullable
        ? `${at}: nullable in the model, not in the document`
        : `${at}: nullable in the document, not in the model`,
    );
  }
  const modelEnum = model.enum === undefined ? undefined : list(model.enum);
  const documentEnum = document.enum === undefined ? undefined : list(document.enum);
  if (modelEnum !== documentEnum) {
    out.push(`${at}: enum ${modelEnum ?? "none"} in the model, ${documentEnum ?? "none"} in the document`);
  }
  if (model.items && document.items) out.push(...compareShapes(model.items, document.items, `${path}[]`));
  if (model.properties || document.properties) {
    const mine = model.properties ?? {};
    const theirs = document.properties ?? {};
    const prefix = path === "" ? "" : `${path}.`;
    for (const key of Object.keys(mine)) {
      if (!(key in theirs)) out.push(`${prefix}${key}: in the model, not in the document`);
    }
    for (const key of Object.keys(theirs)) {
      if (!(key in mine)) out.push(`${prefix}${key}: in the document, not in the model`);
    }
    const modelRequired = new Set(model.required ?? []);
    const documentRequired = new Set(document.required ?? []);
    for (const key of Object.keys(mine)) {
      const theirShape = theirs[key];
      if (theirShape === undefined) continue;
      if (modelRequired.has(key) !== documentRequired.has(key)) {
        out.push(
          modelRequired.has(key)
            ? `${prefix}${key}: required in the model, optional in the document`
            : `${prefix}${key}: optional in the model, required in the document`,
        );
      }
      out.push(...compareShapes(mine[key] as Shape, theirShape, `${prefix}${key}`));
    }
  }
  return out.sort();
}

/** The differences between a field or value list of the model and the document's, sorted. */
export function compareLists(model: readonly string[], document: readonly string[]): string[] {
  const theirs = new Set(document);
  const mine = new Set(model);
  return [
    ...model.filter((v) => !theirs.has(v)).map((v) => `${v}: in the model, not in the document`),
    ...document.filter((v) => !mine.has(v)).map((v) => `${v}: in the document, not in the model`),
  ].sort();
}

/** The JSON request body schema of an operation. */
export function requestBodyOf(doc: OpenApiDocument, path: string, method: string): Shape {
  const operation = doc.paths[path]?.[method];
  if (operation === undefined) throw new Error(`no operation ${method.toUpperCase()} ${path}`);
  const body = asObject(operation["requestBody"], `${method} ${path} requestBody`);
  const content = asObject(asObject(body["content"], "content")["application/json"], "application/json");
  return openApiShape(doc, content["schema"], `${method} ${path} body`);
}

/** The `result` schema inside an operation's 200 envelope. */
export function resultOf(doc: OpenApiDocument, path: string, method: string): Shape {
  const operation = doc.paths[path]?.[method];
  if (operation === undefined) throw new Error(`no operation ${method.toUpperCase()} ${path}`);
  const ok = asObject(asObject(operation["responses"], "responses")["200"], "200");
  const content = asObject(asObject(ok["content"], "content")["application/json"], "application/json");
  const envelope = openApiShape(doc, content["schema"], `${method} ${path} 200`);
  const result = envelope.properties?.["result"];
  if (result === undefined) throw new Error(`${method.toUpperCase()} ${path}: no result in the envelope`);
  return result;
}
