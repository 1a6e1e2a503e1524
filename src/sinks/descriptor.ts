import { z } from "zod";
import { SinkError } from "../errors.js";
import type { ErrorCode } from "../error-codes.js";
import type { Logger } from "../log.js";
import type { SecretSink, SinkAddress } from "./types.js";

/**
 * What a sink is to the rest of the program: a descriptor. It names the sink's `type`, holds the zod
 * schema of its options (with the descriptions the configuration reference prints), says how
 * validated options become the resolved config, and builds the sink. Everything that knows about
 * sink types (the config schema, the config types, the loader, `validate`'s collision check, the
 * JSON Schema and docs/CONFIGURATION.md) reads descriptors from one list, src/sinks/registry.ts; so
 * adding a sink is its module and one line there.
 *
 * A descriptor is small and loaded with the config; the sink itself is built by `create`, which may
 * import its implementation only then (the built-in sinks do: `validate` and `schema` never load
 * the HTTP stack or age, and `apply` loads age only for a sink that encrypts).
 */

/** What a sink takes from the process rather than from the config. */
export interface SinkContext {
  /** The entry's key in `sinks:`, carried into log lines. */
  name: string;
  logger?: Logger | undefined;
  /**
   * Environment for token variables, in-cluster discovery and the variables an exec sink passes on
   * (`pass_env`); `process.env` when left out.
   */
  env?: NodeJS.ProcessEnv | undefined;
  /** Clock (ms) for cached logins; `Date.now` when left out. */
  now?: (() => number) | undefined;
}

/** A problem with one sink entry, found by its descriptor's `check`, at a path inside the entry. */
export interface SinkOptionIssue {
  /** Inside the entry: `["age_recipients"]` is reported at `sinks.<name>.age_recipients`. */
  path: readonly (string | number)[];
  code: ErrorCode;
  message: string;
  /** Point at the key (`"key"`) rather than its value, as for a key that needs another key. */
  anchor?: "key" | "value" | "parent";
}

/** Where a record lands in a sink: `id` compares places, `shown` names the place in messages. */
export interface SinkPlacement {
  id: string;
  shown: string;
}

/** What `placement` is told besides the config and the address. */
export interface PlacementContext {
  /** The entry's key in `sinks:`. */
  sinkName: string;
  /** A path as messages show it (relative to the working directory when inside it). */
  show(absolutePath: string): string;
}

/** The schema of one `sinks:` entry: its keys, `type` first. */
export type SinkEntrySchema<
  T extends string = string,
  S extends z.core.$ZodLooseShape = z.core.$ZodLooseShape,
> = z.ZodObject<{ type: z.ZodLiteral<T> } & S, z.core.$strict>;

/** A sink entry as validated: defaults applied, paths still as written. */
export type SinkEntry<T extends string, S extends z.core.$ZodLooseShape> = z.output<SinkEntrySchema<T, S>> & {
  type: T;
};

/** The keys of `O` whose values are strings: what may be listed in `paths`. */
type StringKeys<O> = { [K in keyof O]-?: O[K] extends string | undefined ? K : never }[keyof O] & string;

/** What a sink module writes; `defineSink` turns it into a {@link SinkDescriptor}. */
export interface SinkSpec<T extends string, S extends z.core.$ZodLooseShape, C extends { type: T }> {
  /** The entry's `type:`. */
  type: T;
  /**
   * The entry's keys besides `type`, as zod schemas built from src/config/fields.ts. Their
   * `.meta({ description })` is what the JSON Schema and docs/CONFIGURATION.md show.
   */
  options: S;
  /** JSON Schema keywords for editors that zod cannot express (`dependentRequired`). */
  jsonSchema?: Record<string, unknown>;
  /** Option keys holding paths written relative to the config file: the loaded config has them absolute. */
  paths?: readonly StringKeys<SinkEntry<T, S>>[];
  /**
   * The resolved config from the validated entry (paths already absolute): durations in seconds and
   * the like. Left out, the entry is the config. Nothing downstream re-reads the YAML.
   */
  resolve?: (entry: SinkEntry<T, S>) => C;
  /**
   * Rules across the entry's keys, on the raw entry (reported even when the schema found other
   * problems): the config loader reports each at `sinks.<name>.<path>`, with its file:line:col.
   */
  check?: (entry: Record<string, unknown>) => SinkOptionIssue[];
  /** Where the record for `address` lives, for plans, logs and the demo: never the value. */
  describe: (config: NoInfer<C>, address: SinkAddress) => string;
  /**
   * Where the record for `address` lands, computed as the sink itself names it, so that `validate`
   * refuses two clients that would overwrite each other's record. Left out: the place is the sink
   * entry, the account and the key (right for a sink whose store decides its own names, like exec).
   * May throw the sink's `E_SINK_KEY` (SinkError with `context.reason`) for a key it cannot store.
   */
  placement?: (config: NoInfer<C>, address: SinkAddress, context: PlacementContext) => SinkPlacement;
  /**
   * Directories on this machine that the sink writes records into. The daemon's file watcher ignores
   * them (src/cli/run.ts), so that a secret written under the desired-state directory does not start
   * a run of its own. Left out: none (the sink writes elsewhere, like Vault or an exec program).
   */
  localDirs?: (config: NoInfer<C>) => readonly string[];
  /**
   * Builds the sink. Runs on first use of the sink (its preflight, a read or a write), so it may
   * `await import()` its implementation. Settings it can check without I/O fail here with
   * `E_SINK_CONFIG`, before any secret is minted.
   */
  create: (config: NoInfer<C>, context: SinkContext) => SecretSink | Promise<SecretSink>;
}

/**
 * One sink as the registry holds it. Methods rather than function properties, so a descriptor of a
 * particular config is also a descriptor of `{ type: string }` (the registry's list is of both).
 */
export interface SinkDescriptor<C extends { type: string } = { type: string }> {
  readonly type: C["type"];
  /** The entry's schema, `type: z.literal(type)` first: one member of the `sinks:` union. */
  readonly schema: SinkEntrySchema<C["type"]>;
  /** Validated entry to resolved config; `absolute` resolves a path written in the config. */
  resolve(entry: { type: string }, absolute: (path: string) => string): C;
  check(entry: Record<string, unknown>): SinkOptionIssue[];
  describe(config: C, address: SinkAddress): string;
  placement(config: C, address: SinkAddress, context: PlacementContext): SinkPlacement;
  localDirs(config: C): readonly string[];
  create(config: C, context: SinkContext): Promise<SecretSink>;
}

/** The resolved config of a descriptor, or the union over a list of them. */
export type SinkConfigOf<D> = D extends readonly (infer E)[]
  ? SinkConfigOf<E>
  : D extends SinkDescriptor<infer C>
    ? C
    : never;

/** Copies `value` without its undefined keys, so the resolved config prints cleanly. */
function compact<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** The one way to make a descriptor: see the README's "Writing a sink" for a whole example. */
export function defineSink<
  const T extends string,
  S extends z.core.$ZodLooseShape,
  C extends { type: T } = SinkEntry<T, S>,
>(spec: SinkSpec<T, S, C>): SinkDescriptor<C> {
  const object = z.strictObject({ type: z.literal(spec.type), ...spec.options });
  const schema = (spec.jsonSchema ? object.meta(spec.jsonSchema) : object) as unknown as SinkEntrySchema<T>;
  const paths: readonly string[] = spec.paths ?? [];
  return {
    type: spec.type,
    schema,
    resolve(entry, absolute) {
      const withPaths: Record<string, unknown> = { ...entry };
      for (const key of paths) {
        const value = withPaths[key];
        if (typeof value === "string") withPaths[key] = absolute(value);
      }
      const options = withPaths as SinkEntry<T, S>;
      return compact(spec.resolve ? spec.resolve(options) : (options as unknown as C));
    },
    check: (entry) => spec.check?.(entry) ?? [],
    describe: (config, address) => spec.describe(config, address),
    placement(config, address, context) {
      if (spec.placement) return spec.placement(config, address, context);
      return {
        id: `${spec.type}:${context.sinkName}\u0000${address.account_id}\u0000${address.key}`,
        shown: `${spec.type} sink \`${context.sinkName}\` key \`${address.key}\``,
      };
    },
    localDirs: (config) => spec.localDirs?.(config) ?? [],
    create: async (config, context) => spec.create(config, context),
  };
}

/**
 * The sinks a program knows, and what is built from them. src/sinks/registry.ts holds the program's
 * own; a test builds one with a sink of its own and hands it to `loadConfig`, `loadDesiredState`
 * and `configJsonSchema`, without editing src/.
 */
export interface SinkRegistry {
  readonly descriptors: readonly SinkDescriptor[];
  /** The `type:` values, in registry order (for messages). */
  readonly types: readonly string[];
  /** The schema of one `sinks:` entry: a union tagged by `type`, members in registry order. */
  readonly entrySchema: z.ZodType<{ type: string }>;
  descriptor(type: string): SinkDescriptor | undefined;
  /** A validated entry as the loaded config holds it (paths absolute, durations in seconds). */
  resolve(entry: { type: string }, absolute: (path: string) => string): { type: string };
  /** The descriptor's cross-key rules on a raw entry; none for an entry whose type is unknown. */
  check(entry: Record<string, unknown>): SinkOptionIssue[];
  /** Where `address` lands in the sink entry `sinkName` (see `SinkSpec.placement`). */
  placement(config: { type: string }, address: SinkAddress, context: PlacementContext): SinkPlacement;
  /** Directories on this machine the sink entry writes into (see `SinkSpec.localDirs`). */
  localDirs(config: { type: string }): readonly string[];
  /**
   * The sink a config entry describes; `name` is the entry's key in `sinks:`. The sink is built
   * (and its implementation loaded) on its first preflight, read or write; `describe` needs neither.
   * An unknown type fails here with `E_SINK_CONFIG`.
   */
  create(name: string, config: { type: string }, deps?: Omit<SinkContext, "name">): SecretSink;
}

/** Builds a registry from descriptors; two with one `type` are a programming error. */
export function createSinkRegistry(descriptors: readonly SinkDescriptor[]): SinkRegistry {
  const byType = new Map<string, SinkDescriptor>();
  for (const descriptor of descriptors) {
    if (byType.has(descriptor.type)) throw new Error(`two sinks of type '${descriptor.type}'`);
    byType.set(descriptor.type, descriptor);
  }
  const [first, ...rest] = descriptors.map((d) => d.schema);
  if (first === undefined) throw new Error("a sink registry needs at least one sink");
  const find = (type: string): SinkDescriptor => {
    const descriptor = byType.get(type);
    if (!descriptor) throw new Error(`no sink of type '${type}' in this registry`);
    return descriptor;
  };
  return {
    descriptors: [...descriptors],
    types: [...byType.keys()],
    // Every member has `type: z.literal(...)` (defineSink), which zod's loose shape type cannot show.
    entrySchema: z.discriminatedUnion("type", [first, ...rest]) as unknown as z.ZodType<{ type: string }>,
    descriptor: (type) => byType.get(type),
    resolve: (entry, absolute) => find(entry.type).resolve(entry, absolute),
    check: (entry) => (typeof entry.type === "string" ? (byType.get(entry.type)?.check(entry) ?? []) : []),
    placement: (config, address, context) => find(config.type).placement(config, address, context),
    localDirs: (config) => find(config.type).localDirs(config),
    create(name, config, deps = {}) {
      const descriptor = byType.get(config.type);
      if (!descriptor) {
        throw new SinkError("E_SINK_CONFIG", `sink=${name}: unknown sink type '${String(config.type)}'`, {
          disposition: "terminal",
          context: { sink: name, type: config.type },
        });
      }
      return new LazySink(descriptor, config, { ...deps, name });
    },
  };
}

/**
 * A sink built on first use. The resolver hands out sinks synchronously (src/sinks/types.ts
 * `SinkResolver`), and the first thing asked of a sink is always a preflight, a read or a write: the
 * implementation is imported and constructed then, once; a construction error (`E_SINK_CONFIG`) is
 * the rejection of that call and of every later one.
 */
class LazySink implements SecretSink {
  readonly type: string;
  readonly #descriptor: SinkDescriptor;
  readonly #config: { type: string };
  readonly #context: SinkContext;
  #built: Promise<SecretSink> | null = null;

  constructor(descriptor: SinkDescriptor, config: { type: string }, context: SinkContext) {
    this.type = descriptor.type;
    this.#descriptor = descriptor;
    this.#config = config;
    this.#context = context;
  }

  #sink(): Promise<SecretSink> {
    this.#built ??= this.#descriptor.create(this.#config, this.#context);
    return this.#built;
  }

  async checkWritable(address: SinkAddress): Promise<void> {
    await (await this.#sink()).checkWritable(address);
  }

  async write(...args: Parameters<SecretSink["write"]>): ReturnType<SecretSink["write"]> {
    return (await this.#sink()).write(...args);
  }

  async read(address: SinkAddress): ReturnType<SecretSink["read"]> {
    return (await this.#sink()).read(address);
  }

  describe(address: SinkAddress): string {
    return this.#descriptor.describe(this.#config, address);
  }
}
