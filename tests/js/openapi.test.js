// The OpenAPI documents of the HTTP APIs (schema/openapi/, written by ci/schema from the code
// that serves them) are valid OpenAPI 3.0, as an integrator's client generator reads them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import SwaggerParser from "@apidevtools/swagger-parser";

const dir = new URL("../../schema/openapi/", import.meta.url).pathname;
const documents = readdirSync(dir).filter((f) => f.endsWith(".json"));

test("every HTTP API has a document", () => {
  assert.deepEqual(documents.sort(), ["content-store.json", "engine-gateway.json", "relayer-gateway.json"]);
});

for (const file of documents) {
  test(`${file} is valid OpenAPI 3.0 with unique operation ids`, async () => {
    const document = JSON.parse(readFileSync(join(dir, file), "utf8"));
    assert.match(document.openapi, /^3\.0\./);
    // validate() checks the document against the OpenAPI schema, resolves every $ref, and
    // checks each path's parameters against its template.
    await SwaggerParser.validate(structuredClone(document));
    const ids = Object.values(document.paths).flatMap((item) => Object.values(item).map((op) => op.operationId));
    assert.equal(new Set(ids).size, ids.length, `operation ids repeat in ${file}`);
    assert.ok(document.paths["/openapi.json"].get, `${file} does not list itself`);
  });
}
