// The engine's score methods (worker/influence/methods.py), as the backend's OpenAPI document
// carries them: `AuditCreate.methods` is an array of an enum of the registry's names, in its order,
// with `x-enum-labels` and `x-enum-descriptions` beside it (`default_method` has the same enum after
// "auto", the job's own choice). The launch form, the verify form and
// the benchmark table all read them here, so a method added to the registry shows up everywhere
// after `make openapi`, with no list to copy.
import { components } from "../../openapi.json";
import type { Schemas } from "./client";

/** A method's name: what `methods` of an audit take. */
export type MethodName = NonNullable<Schemas["AuditCreate"]["methods"]>[number];
/** What `default_method` takes: "auto" (the job chooses by its own evidence) or a method's name. */
export type DefaultMethodName = NonNullable<Schemas["AuditCreate"]["default_method"]>;
export const AUTO: DefaultMethodName = "auto";
/** What "auto" ranks by where nothing chooses (worker/influence/methods.py AUTO_PROVISIONAL):
 * audits too small for canaries, and audits from before each chose its own. */
export const AUTO_PROVISIONAL: MethodName = "length";

interface EnumSchema {
  enum?: string[];
  default?: string;
  description?: string;
  "x-enum-labels"?: string[];
  "x-enum-descriptions"?: string[];
}

const properties = components.schemas.AuditCreate.properties as unknown as Record<
  string,
  EnumSchema & { items?: EnumSchema }
>;
const spec: EnumSchema = properties.methods.items ?? {};

/** Every method, in the registry's order. */
export const METHODS: readonly MethodName[] = (spec.enum ?? []) as MethodName[];

const LABELS = new Map(METHODS.map((name, i) => [name as string, spec["x-enum-labels"]?.[i]]));
const DESCRIPTIONS = new Map(METHODS.map((name, i) => [name as string, spec["x-enum-descriptions"]?.[i]]));

export function isMethod(value: string): value is MethodName {
  return LABELS.has(value);
}

/** The method's human name; a name the registry does not know reads with spaces for `_`. */
export function methodLabel(method: string): string {
  return LABELS.get(method) ?? method.replace(/_/g, " ");
}

/** One or two sentences on what the method computes, or undefined for an unknown name. */
export function methodDescription(method: string): string | undefined {
  return DESCRIPTIONS.get(method);
}

/** What an audit's `default_method` is when its launch names none ("auto": the job chooses). */
export const DEFAULT_METHOD: string = properties.default_method.default ?? AUTO;
