/**
 * Params rules that fastest-validator has no keyword for, written so that the same definition
 * validates (through a root `custom` check) and documents itself (gateway/openapi.ts reads
 * `exactlyOne` and emits a `oneOf`), and neither can drift from the other.
 */
type Rules = Record<string, unknown>;

export type ExactlyOneOfSchema<P extends Rules> = {
  $$root: true;
  type: "object";
  strict: true;
  props: P;
  /** Exactly one of these optional props must be given. */
  exactlyOne: readonly string[];
  messages: Record<string, string>;
  custom: (value: unknown, errors: { type: string; field?: string; actual?: unknown }[]) => unknown;
};

/** A params schema whose object must hold exactly one of `fields` (all optional in `props`). */
export function exactlyOneOf<P extends Rules>(fields: readonly string[], props: P): ExactlyOneOfSchema<P> {
  const names = fields.map((f) => `'${f}'`);
  const list = `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
  return {
    $$root: true,
    type: "object",
    strict: true,
    props,
    exactlyOne: fields,
    messages: {
      exactlyOneMissing: `The body must have exactly one of ${list}; it has none of them`,
      exactlyOneExtra: `The body must have exactly one of ${list}; it has {actual}`,
    },
    custom: (value, errors) => {
      if (typeof value !== "object" || value === null) return value;
      const given = fields.filter((f) => (value as Rules)[f] !== undefined);
      if (given.length === 0) errors.push({ type: "exactlyOneMissing", field: fields[0] });
      else if (given.length > 1) {
        errors.push({
          type: "exactlyOneExtra",
          field: given[1],
          actual: given.map((f) => `'${f}'`).join(" and "),
        });
      }
      return value;
    },
  };
}

export type VariantsSchema<P extends Rules> = {
  $$root: true;
  type: "object";
  strict: true;
  props: P;
  /** The prop whose value picks the variant, and each variant's props: `name` required, `name?` optional. */
  variants: { by: string; of: Record<string, readonly string[]> };
  messages: Record<string, string>;
  custom: (value: unknown, errors: { type: string; field?: string; expected?: unknown }[]) => unknown;
};

/**
 * A params schema of several shapes told apart by one enum prop (`type: "direct"` takes `userId`,
 * `type: "group"` takes `name` and maybe `memberIds`): `props` holds every prop (the enum
 * checked as usual), and each variant lists the props it takes.
 */
export function variantsBy<P extends Rules>(
  by: keyof P & string,
  props: P,
  of: Record<string, readonly string[]>,
): VariantsSchema<P> {
  return {
    $$root: true,
    type: "object",
    strict: true,
    props,
    variants: { by, of },
    messages: {
      variantRequired: `The '{field}' field is required when '${by}' is {expected}`,
      variantForbidden: `The '{field}' field is not taken when '${by}' is {expected}`,
    },
    custom: (value, errors) => {
      if (typeof value !== "object" || value === null) return value;
      const v = value as Rules;
      const fields = of[String(v[by])];
      if (!fields || !Object.hasOwn(of, String(v[by]))) return value;
      const expected = `'${String(v[by])}'`;
      for (const f of fields) {
        if (!f.endsWith("?") && v[f] === undefined)
          errors.push({ type: "variantRequired", field: f, expected });
      }
      const taken = new Set([by, ...fields.map((f) => f.replace(/\?$/, ""))]);
      for (const f of Object.keys(props)) {
        if (!taken.has(f) && v[f] !== undefined)
          errors.push({ type: "variantForbidden", field: f, expected });
      }
      return value;
    },
  };
}

export type TextRule<R extends Rules> = Omit<R, "min" | "max"> & {
  type: "string";
  /** Characters (code points, as JSON Schema counts them and `[...text]` does) at least and at most. */
  minChars?: number;
  maxChars?: number;
  messages: Record<string, string>;
  custom: (value: unknown, errors: { type: string; expected?: unknown; actual?: unknown }[]) => unknown;
};

/**
 * A string rule whose `min`/`max` count characters (code points) rather than UTF-16 units, the
 * way the API docs and JSON Schema's minLength/maxLength count them: fastest-validator's own
 * bounds count `value.length`, so 32 emoji (64 units) failed a 32-character limit and 4 of them
 * passed an 8-character minimum.
 */
export function text<R extends Rules & { min?: number; max?: number }>(rule: R): TextRule<R> {
  const { min, max, ...rest } = rule;
  const messages = (rest.messages ?? {}) as Record<string, string>;
  return {
    ...rest,
    type: "string",
    minChars: min,
    maxChars: max,
    messages: {
      charsMin: "The '{field}' field must have at least {expected} characters; it has {actual}",
      charsMax: "The '{field}' field must have at most {expected} characters; it has {actual}",
      ...messages,
    },
    custom: (value, errors) => {
      if (typeof value !== "string") return value;
      let count = 0;
      for (const _ of value) count += 1;
      if (min !== undefined && count < min) errors.push({ type: "charsMin", expected: min, actual: count });
      else if (max !== undefined && count > max)
        errors.push({ type: "charsMax", expected: max, actual: count });
      return value;
    },
  } as TextRule<R>;
}
