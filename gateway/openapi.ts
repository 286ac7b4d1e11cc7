/**
 * The OpenAPI 3.1 document served at /openapi.json, generated from the route table and the
 * fastest-validator params schemas of lib/contracts.ts: the same definitions the gateway routes
 * with and the services validate with, so the document cannot drift from the behaviour. What a
 * params rule does beyond JSON Schema's keywords is written out here the way the server applies
 * it: `trim` (the length is counted after trimming), the email check, `exactlyOne` and
 * `variants` (lib/param-rules.ts, as `oneOf`), and the limits that come from the node's config.
 * Links, for clients and stateful fuzzers, follow from each route's `location` and `refers`.
 * test/unit/gateway/openapi.test.ts validates the document against the OpenAPI 3.1 schema.
 */
import { PARAMS } from "../lib/contracts.ts";
import { THUMB_SIZES } from "../services/chat/uploads.ts";
import { type DocConfig, type ResourceRef, ROUTES, type RouteDef } from "./routes.ts";
import { NON_WS, WS } from "./text-patterns.ts";

type JsonSchema = Record<string, unknown>;
type FieldRule = Record<string, unknown> | string;

const ERROR_TEXT: Record<number, string> = {
  400: "Malformed JSON, or a body that does not decode as its Content-Encoding",
  401: "Missing, invalid, expired or revoked access token",
  403: "Not a member of the chat, or not allowed",
  404: "Unknown resource",
  409: "Email or username already taken",
  413: "Body over BODY_LIMIT_BYTES",
  415: "A body that is not application/json, or an unsupported Content-Encoding",
  422: "Field validation failed (per-field details)",
  429: "Rate limited (see Retry-After)",
  503: "A needed service or the store is unavailable (see Retry-After)",
};

/** fastest-validator's email check (its default "quick" mode: `^\\S+@\\S+\\.\\S+$`), after its trim. */
const EMAIL = `^${WS}*${NON_WS}+@${NON_WS}+\\.${NON_WS}+${WS}*$`;

const DEFAULT_DOC_CONFIG: DocConfig = {
  chat: { maxMessageLength: 4_000, maxGroupMembers: 100 },
};

export function fieldSchema(rule: FieldRule): { schema: JsonSchema; optional: boolean } {
  const r: Record<string, unknown> = typeof rule === "string" ? parseShorthand(rule) : rule;
  let schema: JsonSchema = {};
  switch (r.type) {
    case "email":
      // fastest-validator trims and lower-cases, then checks max and the pattern: both bounds
      // apply to the trimmed value.
      Object.assign(schema, { type: "string", pattern: EMAIL });
      if (r.max !== undefined) schema.allOf = [trimmedLength(0, r.max as number)];
      break;
    case "number":
      schema.type = r.integer ? "integer" : "number";
      if (r.min !== undefined) schema.minimum = r.min;
      if (r.max !== undefined) schema.maximum = r.max;
      break;
    case "enum":
      schema = { type: "string", enum: r.values };
      break;
    case "object": {
      schema.type = "object";
      const props = (r.props ?? {}) as Record<string, FieldRule>;
      const properties: Record<string, JsonSchema> = {};
      const required: string[] = [];
      for (const [name, prop] of Object.entries(props)) {
        const field = fieldSchema(prop);
        properties[name] = field.schema;
        if (!field.optional) required.push(name);
      }
      schema.properties = properties;
      if (required.length > 0) schema.required = required;
      if (r.strict) schema.additionalProperties = false;
      break;
    }
    case "array":
      schema.type = "array";
      if (r.items !== undefined) schema.items = fieldSchema(r.items as FieldRule).schema;
      if (r.min !== undefined) schema.minItems = r.min;
      if (r.max !== undefined) schema.maxItems = r.max;
      break;
    default: {
      schema.type = r.type ?? "string";
      // lib/param-rules.ts text(): bounds in characters, as JSON Schema counts them.
      const min = (r.min ?? r.minChars) as number | undefined;
      const max = (r.max ?? r.maxChars) as number | undefined;
      if (r.trim) Object.assign(schema, trimmedLength(min, max));
      else {
        if (min !== undefined) schema.minLength = min;
        if (max !== undefined) schema.maxLength = max;
      }
      // `\S` and `\s` as JavaScript means them, whatever engine reads the document.
      if (r.pattern !== undefined) {
        schema.pattern = String(r.pattern).replaceAll("\\S", NON_WS).replaceAll("\\s", WS);
      }
    }
  }
  if (r.nullable) schema.type = [schema.type, "null"];
  return { schema, optional: Boolean(r.optional) };
}

/**
 * A trimmed string's bounds: the value may be wrapped in any whitespace, and what is inside has
 * `min` to `max` characters, the first and last not whitespace.
 */
function trimmedLength(min = 0, max?: number): JsonSchema {
  const inner =
    max === undefined
      ? `${NON_WS}(?:[\\s\\S]*${NON_WS})?`
      : max <= 1
        ? NON_WS
        : `${NON_WS}(?:[\\s\\S]{0,${max - 2}}${NON_WS})?`;
  return { pattern: min > 0 ? `^${WS}*${inner}${WS}*$` : `^${WS}*(?:${inner})?${WS}*$` };
}

function parseShorthand(rule: string): Record<string, unknown> {
  const [type, ...rest] = rule.split("|");
  const r: Record<string, unknown> = { type };
  for (const part of rest) {
    const [k, v] = part.split(":");
    if (k) r[k] = v === undefined ? true : Number.isNaN(Number(v)) ? v : Number(v);
  }
  return r;
}

function pathParams(path: string): string[] {
  return [...path.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1] as string);
}

/** A params schema's props, and its root rules (lib/param-rules.ts) when it has them. */
function propsOf(params: Record<string, unknown>): {
  props: Record<string, FieldRule>;
  root: Record<string, unknown> | undefined;
} {
  if (params.$$root === true) return { props: params.props as Record<string, FieldRule>, root: params };
  const props = Object.fromEntries(Object.entries(params).filter(([name]) => !name.startsWith("$$")));
  return { props: props as Record<string, FieldRule>, root: undefined };
}

function bodySchema(
  props: Record<string, JsonSchema>,
  required: string[],
  root: Record<string, unknown> | undefined,
): JsonSchema {
  const object = (names: string[], req: string[], extra: Record<string, JsonSchema> = {}) => ({
    type: "object",
    additionalProperties: false,
    properties: { ...Object.fromEntries(names.map((n) => [n, props[n] as JsonSchema])), ...extra },
    required: req,
  });
  const exactlyOne = root?.exactlyOne as string[] | undefined;
  if (exactlyOne) {
    const common = Object.keys(props).filter((n) => !exactlyOne.includes(n));
    return {
      oneOf: exactlyOne.map((one) => object([one, ...common], [one, ...required.filter((n) => n !== one)])),
    };
  }
  const variants = root?.variants as { by: string; of: Record<string, string[]> } | undefined;
  if (variants) {
    return {
      oneOf: Object.entries(variants.of).map(([value, fields]) => {
        const names = fields.map((f) => f.replace(/\?$/, ""));
        const req = fields.filter((f) => !f.endsWith("?"));
        return object(names, [variants.by, ...req], { [variants.by]: { const: value } });
      }),
    };
  }
  return object(Object.keys(props), required);
}

function paramsOf(action: string) {
  return propsOf((PARAMS as unknown as Record<string, Record<string, unknown>>)[action] ?? {});
}

function operation(def: RouteDef, config: DocConfig): JsonSchema {
  const { props, root } = paramsOf(def.action);
  const limits = def.limits?.(config) ?? {};
  const inPath = pathParams(def.path);
  const parameters: JsonSchema[] = [];
  const bodyProps: Record<string, JsonSchema> = {};
  const required: string[] = [];
  for (const [name, rule] of Object.entries(props)) {
    const { schema: base, optional } = fieldSchema(rule);
    const schema = { ...base, ...limits[name] };
    if (inPath.includes(name)) parameters.push({ name, in: "path", required: true, schema });
    else if (def.method === "GET" || (def.method === "DELETE" && !def.bodyParams)) {
      parameters.push({ name, in: "query", required: !optional, schema });
    } else {
      bodyProps[name] = schema;
      if (!optional) required.push(name);
    }
  }
  const hasBody = def.method !== "GET" && (def.method !== "DELETE" || def.bodyParams === true);
  const success =
    def.status === 204
      ? { description: "Done" }
      : def.status === 202
        ? { description: "Accepted: the mail is on its way" }
        : jsonResponse("Success", { type: "object" });
  const links = linksOf(def);
  if (links) (success as JsonSchema).links = links;
  const responses: Record<string, JsonSchema> = { [def.status]: success };
  if (def.existing) responses[200] = { ...success, description: def.existing };
  const errorStatuses = new Set([...def.errors, 400, 422, 503, ...(hasBody ? [413, 415] : [])]);
  if (def.auth) errorStatuses.add(401);
  if (inPath.length > 0) errorStatuses.add(404);
  for (const status of [...errorStatuses].sort()) {
    responses[status] = jsonResponse(ERROR_TEXT[status] ?? "Error", { $ref: "#/components/schemas/Error" });
  }
  const op: JsonSchema = {
    operationId: def.action,
    summary: def.summary,
    tags: [def.tag],
    parameters,
    responses,
  };
  if (hasBody) {
    op.requestBody = {
      // A route without body fields takes no body, or `{}`.
      required: Object.keys(bodyProps).length > 0,
      content: {
        "application/json": { schema: { ...bodySchema(bodyProps, required, root), ...def.bodyRules } },
      },
    };
  }
  if (def.auth) op.security = [{ bearer: [] }];
  return op;
}

/**
 * The operations an answer leads to: for each resource the route names (its `location`, its
 * `refers`), every route whose path starts with that resource's path, with the path params found
 * in the answer.
 */
function linksOf(def: RouteDef): Record<string, JsonSchema> | undefined {
  const refs: ResourceRef[] = [...(def.location ? [def.location] : []), ...(def.refers ?? [])];
  const links: Record<string, JsonSchema> = {};
  for (const ref of refs) {
    const prefix = ref.path.split("/");
    for (const target of ROUTES) {
      if (target === def || target.unlinked) continue;
      const parts = target.path.split("/");
      if (parts.length < prefix.length || prefix.some((p, i) => parts[i] !== p)) continue;
      const parameters = Object.fromEntries(
        pathParams(ref.path).map((name) => [`path.${name}`, `$response.body#${ref.params[name]}`]),
      );
      links[target.action.replace(".", "_")] = { operationId: target.action, parameters };
    }
  }
  return Object.keys(links).length > 0 ? links : undefined;
}

function jsonResponse(description: string, schema: JsonSchema): JsonSchema {
  return { description, content: { "application/json": { schema } } };
}

const errorRef = (description: string) => jsonResponse(description, { $ref: "#/components/schemas/Error" });

/**
 * The file routes (gateway/files/file-routes.ts), which stream bytes and so are not in the route
 * table of JSON actions: written out here, from the same limits and sizes the routes use.
 */
function filePaths(): Record<string, Record<string, JsonSchema>> {
  const id = PARAMS["chat.fileAccess"].id;
  const idSchema = { type: "string", minLength: id.min, maxLength: id.max, pattern: id.pattern };
  const upload = {
    type: "object",
    required: ["id", "name", "size", "contentType", "sha256", "createdAt"],
    properties: {
      id: { type: "string" },
      name: { type: "string" },
      size: { type: "integer", minimum: 1 },
      contentType: { type: "string" },
      sha256: { type: "string", pattern: "^[0-9a-f]{64}$" },
      width: { type: "integer", minimum: 1 },
      height: { type: "integer", minimum: 1 },
      createdAt: { type: "string", format: "date-time" },
    },
  };
  const fileParams = [
    { name: "id", in: "path", required: true, schema: idSchema },
    { name: "thumb", in: "query", required: false, schema: { type: "integer", enum: [...THUMB_SIZES] } },
    {
      name: "access_token",
      in: "query",
      required: false,
      description: "The access token, for clients that cannot send the Authorization header (<img>, <video>)",
      schema: { type: "string" },
    },
    { name: "Range", in: "header", required: false, schema: { type: "string" } },
  ];
  // The type found at upload (image/png, text/plain; charset=utf-8, ...), or image/webp for a thumbnail.
  const bytes = { "*/*": { schema: { type: "string", format: "binary" } } };
  const fileResponses = (withBody: boolean) => ({
    200: { description: "The file", ...(withBody ? { content: bytes } : {}) },
    206: { description: "One byte range of the file (Range)", ...(withBody ? { content: bytes } : {}) },
    304: { description: "Unchanged (If-None-Match)" },
    401: errorRef(ERROR_TEXT[401] as string),
    404: errorRef("No such file, or not one the caller may read"),
    416: { description: "The range starts past the end (Content-Range: bytes */SIZE)" },
    422: errorRef("`thumb` is not one of the sizes, or the file is not an image"),
    503: errorRef(ERROR_TEXT[503] as string),
  });
  const download = (method: "get" | "head") => ({
    operationId: method === "get" ? "files.download" : "files.head",
    summary:
      method === "get"
        ? "Download a file (the uploader's, or one a message of the caller's chats holds)"
        : "A file's headers",
    tags: ["files"],
    parameters: fileParams,
    responses: fileResponses(method === "get"),
    security: [{ bearer: [] }, {}],
  });
  return {
    "/uploads": {
      post: {
        operationId: "files.upload",
        summary: "Upload a file (the raw bytes as the body); its type is found from the bytes",
        tags: ["files"],
        parameters: [{ name: "name", in: "query", required: true, schema: { type: "string", minLength: 1 } }],
        requestBody: {
          required: true,
          content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } },
        },
        responses: {
          201: {
            ...jsonResponse("Stored", upload),
            links: {
              files_download: {
                operationId: "files.download",
                parameters: { "path.id": "$response.body#/id" },
              },
            },
          },
          400: errorRef("A body that ended before it was whole"),
          401: errorRef(ERROR_TEXT[401] as string),
          413: errorRef(
            "Over UPLOAD_MAX_BYTES (UPLOAD_TOO_LARGE) or the user's quota (UPLOAD_QUOTA_EXCEEDED)",
          ),
          415: errorRef("A type (found from the bytes) that UPLOAD_ALLOWED_TYPES does not allow"),
          422: errorRef("No name, a name that is empty once made safe, or an empty body"),
          503: errorRef(ERROR_TEXT[503] as string),
        },
        security: [{ bearer: [] }],
      },
    },
    "/files/{id}": { get: download("get"), head: download("head") },
  };
}

/** `GET|HEAD /users/me/export` (gateway/account-export.ts), streamed beside the route table too. */
function exportPaths(): Record<string, Record<string, JsonSchema>> {
  const document = {
    type: "object",
    required: ["exportedAt", "account", "profile", "sessions", "chats", "messages", "uploads"],
    properties: {
      exportedAt: { type: "string", format: "date-time" },
      account: { type: "object" },
      profile: { type: "object" },
      sessions: { type: "array", items: { type: "object" } },
      chats: { type: "array", items: { type: "object" } },
      messages: { type: "array", items: { type: "object" } },
      uploads: { type: "array", items: { type: "object" } },
    },
  };
  const op = (method: "get" | "head") => ({
    operationId: method === "get" ? "users.export" : "users.exportHead",
    summary:
      method === "get"
        ? "Everything kept of the caller, as one streamed JSON document (once an hour)"
        : "The export's headers (does not count as an export)",
    tags: ["users"],
    parameters: [],
    responses: {
      200: method === "get" ? jsonResponse("The export", document) : { description: "The export's headers" },
      401: errorRef(ERROR_TEXT[401] as string),
      429: errorRef("An export was made within the hour (RATE_LIMIT_EXPORT_USER); see Retry-After"),
      503: errorRef(ERROR_TEXT[503] as string),
    },
    security: [{ bearer: [] }],
  });
  return { "/users/me/export": { get: op("get"), head: op("head") } };
}

export function buildOpenApi(config: DocConfig = DEFAULT_DOC_CONFIG): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const def of ROUTES) {
    const path = def.path.replace(/:([A-Za-z]+)/g, "{$1}");
    paths[path] ??= {};
    (paths[path] as Record<string, JsonSchema>)[def.method.toLowerCase()] = operation(def, config);
  }
  Object.assign(paths, filePaths(), exportPaths());
  return {
    openapi: "3.1.0",
    info: { title: "Social platform API", version: "1" },
    paths,
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" } },
      schemas: {
        Error: {
          type: "object",
          required: ["error"],
          properties: {
            error: {
              type: "object",
              required: ["code", "message"],
              properties: { code: { type: "string" }, message: { type: "string" }, details: {} },
            },
          },
        },
      },
    },
  };
}
