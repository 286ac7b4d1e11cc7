import assert from "node:assert/strict";
import { test } from "node:test";
import { FrameAdmission, type Pausable } from "../../../gateway/frame-admission.ts";

class Conn implements Pausable {
  paused = false;
  pauses = 0;
  pauseReading(): void {
    this.paused = true;
    this.pauses += 1;
  }
  resumeReading(): void {
    this.paused = false;
  }
}

test("connections that send at the bound are paused, and all read again at half of it", () => {
  const changes: [number, number][] = [];
  const admission = new FrameAdmission(4, (paused, n) => changes.push([paused, n]));
  const [a, b, c] = [new Conn(), new Conn(), new Conn()];
  admission.admit(a);
  admission.admit(b);
  admission.admit(a);
  assert.ok(!a.paused && !b.paused, "under the bound nobody is paused");
  admission.admit(c);
  assert.ok(c.paused, "the frame that reaches the bound pauses its connection");
  admission.admit(b);
  assert.ok(b.paused && !a.paused);
  assert.equal(admission.inProgress, 5);
  admission.done();
  admission.done();
  assert.ok(b.paused && c.paused, "still above half of the bound");
  admission.done();
  assert.ok(!b.paused && !c.paused, "at half of it every paused connection is read again");
  assert.deepEqual(changes, [
    [1, 4],
    [0, 2],
  ]);
});

test("a connection is paused once however many of its frames come in while paused", () => {
  const admission = new FrameAdmission(1);
  const a = new Conn();
  admission.admit(a);
  admission.admit(a);
  admission.admit(a);
  assert.equal(a.pauses, 1);
});

test("a connection that closed while paused is not resumed", () => {
  const admission = new FrameAdmission(2);
  const [a, b] = [new Conn(), new Conn()];
  admission.admit(a);
  admission.admit(b);
  assert.ok(b.paused);
  admission.forget(b);
  admission.done();
  admission.done();
  assert.ok(b.paused, "forgotten: left as it was");
  assert.ok(!admission.isPaused(b));
});
