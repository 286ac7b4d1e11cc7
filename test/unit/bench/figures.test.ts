import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { figure, median, shortfall } from "../../../bench/figures.ts";

describe("benchmark figures", () => {
  test("the median of an even count is the mean of the middle two; of nothing, NaN", () => {
    assert.equal(median([1, 2, 3, 10]), 2.5);
    assert.equal(median([4]), 4);
    assert.ok(Number.isNaN(median([])));
  });

  test("a figure is judged on its median against its target, and its shortfall says by how much", () => {
    const miss = figure({
      id: "a",
      label: "a",
      unit: "req/s",
      runs: [60, 50, 70],
      target: { on: "value", op: ">=", value: 100 },
    });
    assert.equal(miss.median, 60);
    assert.equal(miss.result, "miss");
    assert.equal(shortfall(miss), "40 % below target");
    const pass = figure({
      id: "b",
      label: "b",
      unit: "ms",
      runs: [9, 8],
      target: { on: "value", op: "<=", value: 10 },
    });
    assert.equal(pass.result, "pass");
    assert.equal(shortfall(pass), "");
  });

  test("a figure with no successful run is a miss that says nothing was measured, not NaN %", () => {
    const none = figure({
      id: "c",
      label: "c",
      unit: "ms",
      runs: [Number.NaN, Number.NaN],
      target: { on: "value", op: "<=", value: 10 },
    });
    assert.equal(none.result, "miss");
    assert.equal(shortfall(none), "no value: nothing was measured");
    assert.match(none.note ?? "", /2 of 2 runs had no successful response/);
  });

  test("too many failed requests make a figure miss even when its median meets the target", () => {
    const failing = figure({
      id: "d",
      label: "d",
      unit: "ms",
      runs: [5],
      requests: 100,
      failures: 5,
      statusCodes: { "200": 95, "503": 5 },
      target: { on: "value", op: "<=", value: 10 },
    });
    assert.equal(failing.result, "miss");
    assert.equal(shortfall(failing), "target met, but too many requests failed");
    assert.match(failing.note ?? "", /5 of 100 requests failed \(5\.00 %: 503 x5\)/);
  });
});
