// The scenarios' processor. Artillery would bundle a .ts processor with esbuild into a dist/
// folder; this module instead lets Node 24, which runs Artillery, load the TypeScript as it is.
export * from "./processors/auth.ts";
export * from "./processors/chat.ts";
export * from "./processors/profile.ts";
export { failOnErrorStatus } from "./processors/vu.ts";
