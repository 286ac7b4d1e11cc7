/** Register and login scenarios: a fresh user per virtual user, logins against a registered pool. */
import { numberVar, pick, pool, registerPool, target, uniqueUser, type VuContext } from "./vu.ts";

/** beforeScenario: the credentials this virtual user registers with, used by nobody else. */
export async function newCredentials(context: VuContext): Promise<void> {
  Object.assign(context.vars, uniqueUser());
}

/** before: registers `loginPoolSize` users for the login scenario. */
export async function createLoginPool(context: VuContext): Promise<void> {
  context.vars.loginPool = await registerPool(target(context), numberVar(context, "loginPoolSize", 20));
}

/** beforeScenario: one user of the pool to log in as. */
export async function pickLoginUser(context: VuContext): Promise<void> {
  const user = pick(pool(context, "loginPool"));
  context.vars.email = user.email;
  context.vars.password = user.password;
}
