/**
 * The two halves of the runner's protocol with its children: a child prints one JSON line
 * `{"bench":"ready",...}` on stdout when it is ready (or `"result"` when it only measures), and
 * stops cleanly when the runner sends "stop" over IPC, on SIGTERM/SIGINT, or when the runner goes
 * away. A clean stop ends in process.exit(0), which is also when `--cpu-prof` writes its profile.
 */
export function announce(kind: "ready" | "result", data: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ bench: kind, ...data })}\n`);
}

export function stopOnRequest(stop: () => Promise<void>): void {
  let stopping = false;
  const finish = () => {
    if (stopping) return;
    stopping = true;
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`stop failed: ${err instanceof Error ? err.stack : String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on("message", (message) => {
    if (message === "stop") finish();
  });
  process.on("disconnect", finish);
  process.on("SIGTERM", finish);
  process.on("SIGINT", finish);
}

/** Reads the one JSON argument the runner passes to a child. */
export function childArgs<T>(): T {
  const raw = process.argv[2];
  if (!raw) throw new Error("missing the JSON argument from the bench runner");
  return JSON.parse(raw) as T;
}
