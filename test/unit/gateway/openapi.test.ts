import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Validator } from "@seriousme/openapi-schema-validator";
// ajv comes with the validator above; its 2020-12 dialect checks the Schema Objects, which the
// OpenAPI 3.1 schema leaves unchecked (any object passes there).
import { Ajv2020 } from "ajv/dist/2020.js";
import { buildOpenApi } from "../../../gateway/openapi.ts";
import { ROUTES } from "../../../gateway/routes.ts";

type Doc = {
  paths: Record<string, Record<string, Operation>>;
};
type Operation = {
  operationId: string;
  requestBody?: { required: boolean; content: { "application/json": { schema: Record<string, unknown> } } };
  responses: Record<string, { links?: Record<string, { operationId: string; parameters: object }> }>;
};

const doc = buildOpenApi() as unknown as Doc;
const operations = Object.values(doc.paths).flatMap((byMethod) => Object.values(byMethod));
const op = (path: string, method: string) => doc.paths[path]?.[method] as Operation;

/** Every Schema Object of the document, with where it is. */
function schemasOf(value: unknown, at = ""): [string, object][] {
  if (typeof value !== "object" || value === null) return [];
  const found: [string, object][] = [];
  for (const [key, child] of Object.entries(value)) {
    if (key === "schema" && typeof child === "object" && child !== null) found.push([`${at}/${key}`, child]);
    else found.push(...schemasOf(child, `${at}/${key}`));
  }
  return found;
}

describe("the OpenAPI document", () => {
  test("validates against the OpenAPI 3.1 schema", async () => {
    const result = await new Validator().validate(buildOpenApi() as never);
    assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));
  });

  test("every Schema Object is valid JSON Schema 2020-12 (no `type: enum`)", () => {
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    const schemas = schemasOf(doc);
    assert.ok(schemas.length > 20);
    for (const [at, schema] of schemas) {
      assert.equal(ajv.validateSchema(schema), true, `${at}: ${ajv.errorsText(ajv.errors)}`);
    }
    assert.equal(JSON.stringify(doc).includes('"type":"enum"'), false);
  });

  test("POST /chats states its two shapes, and login its either-or rule, as oneOf", () => {
    const chats = op("/chats", "post").requestBody?.content["application/json"].schema as {
      oneOf: { properties: { type: { const: string } }; required: string[] }[];
    };
    assert.deepEqual(
      chats.oneOf.map((s) => [s.properties.type.const, s.required]),
      [
        ["direct", ["type", "userId"]],
        ["group", ["type", "name"]],
      ],
    );
    const login = op("/auth/login", "post").requestBody?.content["application/json"].schema as {
      oneOf: { required: string[]; additionalProperties: boolean }[];
    };
    assert.deepEqual(
      login.oneOf.map((s) => s.required),
      [
        ["email", "password"],
        ["username", "password"],
      ],
    );
    const ajv = new Ajv2020({ strict: false });
    const check = ajv.compile(login);
    assert.equal(check({ email: "a@b.test", password: "x" }), true);
    assert.equal(check({ username: "abc", password: "x" }), true);
    assert.equal(check({ email: "a@b.test", username: "abc", password: "x" }), false);
    assert.equal(check({ password: "x" }), false);
  });

  test("routes without body fields take no body; every route with one declares 400, 413, 415, 422", () => {
    assert.equal(op("/auth/logout", "post").requestBody?.required, false);
    assert.equal(op("/auth/logout-all", "post").requestBody?.required, false);
    for (const operation of operations.filter((o) => o.requestBody)) {
      for (const status of ["400", "413", "415", "422"]) {
        assert.ok(operation.responses[status], `${operation.operationId} lacks ${status}`);
      }
    }
    assert.ok(op("/chats/{id}/messages", "post").responses["200"], "a resend answers 200");
  });

  test("the file routes: an upload's limits and type refusals, a download's ranges", () => {
    const upload = op("/uploads", "post");
    for (const status of ["201", "401", "413", "415", "422", "503"])
      assert.ok(upload.responses[status], status);
    assert.equal(upload.responses["201"]?.links?.files_download?.operationId, "files.download");
    const download = op("/files/{id}", "get");
    for (const status of ["200", "206", "304", "401", "404", "416", "422"])
      assert.ok(download.responses[status], status);
    assert.ok(op("/files/{id}", "head"));
  });

  test("limits come from the config: message length and group size", () => {
    const built = buildOpenApi({ chat: { maxMessageLength: 123, maxGroupMembers: 7 } }) as unknown as Doc;
    const send = built.paths["/chats/{id}/messages"]?.post?.requestBody?.content["application/json"]
      .schema as {
      properties: { message: { maxLength: number } };
    };
    assert.equal(send.properties.message.maxLength, 123);
    const open = built.paths["/chats"]?.post?.requestBody?.content["application/json"].schema as {
      oneOf: { properties: { memberIds?: { maxItems: number } } }[];
    };
    assert.equal(open.oneOf[1]?.properties.memberIds?.maxItems, 6);
  });

  test("links chain the id flows: a created chat to its messages, a message to its edit", () => {
    const created = op("/chats", "post").responses["201"]?.links ?? {};
    assert.deepEqual(created.chat_send, {
      operationId: "chat.send",
      parameters: { "path.id": "$response.body#/id" },
    });
    const sent = op("/chats/{id}/messages", "post").responses["201"]?.links ?? {};
    assert.deepEqual(sent.chat_edit?.parameters, {
      "path.id": "$response.body#/chatId",
      "path.messageId": "$response.body#/id",
    });
    const sessions = op("/auth/sessions", "get").responses["200"]?.links ?? {};
    assert.equal(sessions.auth_revokeSession?.operationId, "auth.revokeSession");
    const ids = new Set<string>(operations.map((o) => o.operationId as string));
    for (const r of ROUTES) assert.ok(ids.has(r.action), r.action);
    for (const operation of operations) {
      for (const response of Object.values(operation.responses)) {
        for (const link of Object.values(response.links ?? {}))
          assert.ok(ids.has(link.operationId as string));
      }
    }
  });
});
