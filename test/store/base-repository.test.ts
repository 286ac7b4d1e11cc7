import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { DuplicateKeyError } from "../../lib/errors.ts";
import { BaseRepository } from "../../lib/store/base-repository.ts";
import { openStore } from "../../lib/store/index.ts";
import type { IndexSpec } from "../../lib/store/types.ts";

interface Widget {
  _id: string;
  label: string;
  createdAt: Date;
  updatedAt: Date;
}

class WidgetsRepository extends BaseRepository<Widget> {
  indexes(): IndexSpec[] {
    return [{ name: "label_unique", fields: { label: 1 }, unique: true }];
  }

  create(_id: string, label: string, now: Date): Promise<Widget> {
    return this.collection.insertOne(this.stampNew({ _id, label }, now));
  }

  rename(_id: string, label: string, now: Date): Promise<number> {
    return this.collection.updateOne({ _id }, this.stampUpdate({ $set: { label } }, now));
  }

  find(_id: string): Promise<Widget | null> {
    return this.collection.findOne({ _id });
  }
}

test("init creates the indexes; stampNew and stampUpdate set createdAt and updatedAt", async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "base-repository-"));
  const store = await openStore({ dataDir });
  try {
    const widgets = new WidgetsRepository(store.collection<Widget>("widgets"));
    await widgets.init();
    const created = new Date("2024-01-01T00:00:00Z");
    const renamed = new Date("2024-01-02T00:00:00Z");
    await widgets.create("w1", "one", created);
    await assert.rejects(widgets.create("w2", "one", created), DuplicateKeyError);
    assert.equal(await widgets.rename("w1", "uno", renamed), 1);
    assert.deepEqual(await widgets.find("w1"), {
      _id: "w1",
      label: "uno",
      createdAt: created,
      updatedAt: renamed,
    });
  } finally {
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});
