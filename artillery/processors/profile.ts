/** Profile reads and updates with the access tokens of a pool of users registered in `before`. */
import { numberVar, pick, pool, registerPool, target, type VuContext } from "./vu.ts";

/** before: registers `profilePoolSize` users and keeps their access tokens. */
export async function createProfilePool(context: VuContext): Promise<void> {
  context.vars.profilePool = await registerPool(target(context), numberVar(context, "profilePoolSize", 20));
}

/** beforeScenario: signs this virtual user in as one pool user and picks another to look at. */
export async function pickProfileUser(context: VuContext): Promise<void> {
  const users = pool(context, "profilePool");
  const user = pick(users);
  context.vars.token = user.accessToken;
  context.vars.userId = user.id;
  context.vars.otherId = pick(users).id;
  context.vars.bio = `load ${Date.now().toString(36)}`;
}
