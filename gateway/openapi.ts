/**
 * The OpenAPI 3.1 document served at /openapi.json, generated from the route table and the
 * fastest-validator params schemas of lib/contracts.ts: the same definitions the gateway routes
 * with and the services validate with, so the document cannot drift from the behaviour.
 */
import { PARAMS } from "../lib/contracts.ts";
import { ROUTES, type RouteDef } from "./routes.ts";

type JsonSchema = Record<string, unknown>;
type FieldRule = Record<string, unknown> | string;

const ERROR_TEXT: Record<number, string> = {
  400: "Malformed JSON",
  401: "Missing, invalid, expired or revoked access token",
  403: "Not a member of the chat, or not allowed",
  404: "Unknown resource",
  409: "Email or username already taken",
  413: "Body too large",
  422: "Field validation failed (per-field details)",
  429: "Rate limited (see Retry-After)",
  503: "A needed service or the store is unavailable (see Retry-After)",
};

export function fieldSchema(rule: FieldRule): { schema: JsonSchema; optional: boolean } {
  const r: Record<string, unknown> = typeof rule === "string" ? parseShorthand(rule) : rule;
  const schema: JsonSchema = {};
  switch (r.type) {
    case "email":
      Object.assign(schema, { type: "string", format: "email" });
      break;
    case "number":
      schema.type = r.integer ? "integer" : "number";
      if (r.min !== undefined) schema.minimum = r.min;
      if (r.max !== undefined) schema.maximum = r.max;
      break;
    default:
      schema.type = r.type ?? "string";
      if (r.min !== undefined) schema.minLength = r.min;
      if (r.pattern !== undefined) schema.pattern = String(r.pattern);
  }
  if (r.max !== undefined && schema.type !== "integer" && schema.type !== "number") schema.maxLength = r.max;
  if (r.nullable) schema.type = [schema.type, "null"];
  return { schema, optional: Boolean(r.optional) };
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

function operation(def: RouteDef): JsonSchema {
  const params = (PARAMS as unknown as Record<string, Record<string, FieldRule>>)[def.action] ?? {};
  const inPath = pathParams(def.path);
  const parameters: JsonSchema[] = [];
  const bodyProps: Record<string, JsonSchema> = {};
  const required: string[] = [];
  for (const [name, rule] of Object.entries(params)) {
    if (name.startsWith("$$")) continue;
    const { schema, optional } = fieldSchema(rule);
    if (inPath.includes(name)) parameters.push({ name, in: "path", required: true, schema });
    else if (def.method === "GET" || def.method === "DELETE") {
      parameters.push({ name, in: "query", required: !optional, schema });
    } else {
      bodyProps[name] = schema;
      if (!optional) required.push(name);
    }
  }
  const responses: Record<string, JsonSchema> = {
    [def.status]: def.status === 204 ? { description: "Done" } : jsonResponse("Success", { type: "object" }),
  };
  const errorStatuses = new Set([...def.errors, 422, 503, ...(def.method === "GET" ? [] : [400, 413])]);
  if (def.auth) errorStatuses.add(401);
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
  if (def.method !== "GET" && def.method !== "DELETE") {
    op.requestBody = {
      required: true,
      content: {
        "application/json": {
          schema: { type: "object", additionalProperties: false, properties: bodyProps, required },
        },
      },
    };
  }
  if (def.auth) op.security = [{ bearer: [] }];
  return op;
}

function jsonResponse(description: string, schema: JsonSchema): JsonSchema {
  return { description, content: { "application/json": { schema } } };
}

export function buildOpenApi(): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const def of ROUTES) {
    const path = def.path.replace(/:([A-Za-z]+)/g, "{$1}");
    paths[path] ??= {};
    (paths[path] as Record<string, JsonSchema>)[def.method.toLowerCase()] = operation(def);
  }
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
