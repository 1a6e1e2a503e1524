import { describe, expect, it } from "vitest";
import type { LiveClient } from "../../src/api/oauth-clients.js";
import type { Plan } from "../../src/core/plan-types.js";
import { renderJson } from "../../src/render/json.js";
import { renderMarkdown } from "../../src/render/markdown.js";
import { renderText } from "../../src/render/text.js";
import { Secret } from "../../src/secret.js";
import { ACCOUNT_A, ACCOUNT_B, absent, desired, id, live, owned, planOf, policy } from "../core/fixtures.js";

/** A plan with every section filled: creates, an update, deletes, conflicts, pending, orphans, unmanaged. */
function richPlan(extraLive: LiveClient[] = []): Plan {
  return planOf({
    desired: [
      desired(
        "web",
        { client_uri: "https://web.dev", logo_uri: "https://web.dev/l.png" },
        { visibility: "public" },
      ),
      desired("cli", { token_endpoint_auth_method: "none" }, { secret: null }),
      desired("api", { redirect_uris: ["https://api.dev/cb", "https://api.dev/cb2"] }),
      desired("dup"),
      absent("gone"),
      desired("b-app", {}, { account_id: ACCOUNT_B }),
    ],
    live: {
      [ACCOUNT_A]: [
        live(id("api"), {
          client_name: "api",
          redirect_uris: ["https://api.dev/cb"],
          logo_uri: "https://old/l.png",
        }),
        live(id("dup1"), { client_name: "dup" }),
        live(id("dup2"), { client_name: "dup" }),
        live(id("gone"), { client_name: "gone" }),
        live(id("orphan"), { client_name: "orphan" }),
        live(id("foreign"), { client_name: "foreign" }),
        ...extraLive,
      ],
      [ACCOUNT_B]: [],
    },
    inventory: {
      [ACCOUNT_A]: [owned(id("api"), "api"), owned(id("gone"), "gone"), owned(id("orphan"), "orphan")],
    },
    policy: policy({ prune: "none", safety: { max_deletes: 0 } }),
  });
}

describe("renderText", () => {
  const plan = richPlan();

  it("prints terraform-like lines, field diffs, sections and the summary line", () => {
    const text = renderText(plan, { color: false });
    expect(text).toContain(`account ${ACCOUNT_A}`);
    expect(text).toContain('  + create "cli"');
    expect(text).toContain(`  ~ update "api" (id ${id("api")})`);
    expect(text).toContain(
      'redirect_uris: ["https://api.dev/cb"] -> ["https://api.dev/cb", "https://api.dev/cb2"]',
    );
    expect(text).toContain('logo_uri:      "https://old/l.png" -> null');
    expect(text).toContain(`  - delete "gone" (id ${id("gone")}) [ensure-absent]`);
    expect(text).toContain('secret:                     sink "vault", key "oauth/web"');
    expect(text).toMatch(/Conflicts:\n {2}! \S+ "dup": 2 live clients are named "dup"/);
    expect(text).toContain("Pending:");
    expect(text).toContain("Orphaned (owned, no longer desired):");
    expect(text).toContain("Unmanaged (never touched):");
    expect(text).toContain("Safety: refused (use --force to apply anyway)");
    expect(text.trimEnd().split("\n").at(-1)).toBe(
      "Plan: 3 to create, 1 to update, 1 to delete. (1 conflict, 1 pending, 1 orphaned, 1 unmanaged)",
    );
  });

  it("uses ANSI colour only when asked", () => {
    expect(renderText(plan, { color: false })).not.toContain("\x1b[");
    const coloured = renderText(plan, { color: true });
    expect(coloured).toContain("\x1b[32m+ create");
    expect(coloured).toContain("\x1b[31m- delete");
  });

  it("says No changes for an empty plan", () => {
    const empty = planOf({ desired: [] });
    expect(renderText(empty, { color: false })).toBe(
      "No changes.\nPlan: 0 to create, 0 to update, 0 to delete.\n",
    );
  });
});

describe("renderMarkdown", () => {
  it("puts the summary and table first, then one <details> per account", () => {
    const md = renderMarkdown(richPlan());
    const summary = md.indexOf("**Plan: 3 to create, 1 to update, 1 to delete.**");
    const table = md.indexOf("| Account | Create | Update | Delete |");
    const details = md.indexOf("<details");
    expect(md.startsWith("## cf-oauth-gitops plan")).toBe(true);
    expect(summary).toBeGreaterThan(0);
    expect(table).toBeGreaterThan(summary);
    expect(details).toBeGreaterThan(table);
    expect(md.match(/<details/g)).toHaveLength(2);
    expect(md.match(/<\/details>/g)).toHaveLength(2);
    expect(md).toContain(`| <code>${ACCOUNT_A}</code> | 2 | 1 | 1 | 0 | 1 | 1 | 1 | 1 |`);
    expect(md).toContain("| **Total** | **3** | **1** | **1** |");
    expect(md).toContain(`! update "api" (id ${id("api")})`);
    expect(md).toContain("**Safety: refused**");
    expect(md).not.toContain("truncated");
  });

  it("keeps user text from closing the fence or breaking the table", () => {
    const plan = planOf({ desired: [desired("evil ``` </details> | <b>")] });
    const md = renderMarkdown(plan);
    expect(md).toContain("````diff");
    expect(md.match(/^<\/details>$/gm)).toHaveLength(1);
    // The name only ever appears inside the fence, where HTML is inert.
    for (const line of md.split("\n").filter((l) => l.includes("evil"))) expect(line).toMatch(/^\+ /);
  });

  it.each([60_000, 8_000, 3_000, 1_200, 500, 100])(
    "respects a cap of %i bytes and says it cut",
    (maxBytes) => {
      const many = Array.from({ length: 300 }, (_, i) => desired(`client-number-${i}-with-a-long-name`));
      const plan = planOf({ desired: many });
      const md = renderMarkdown(plan, { maxBytes });
      expect(Buffer.byteLength(md, "utf8")).toBeLessThanOrEqual(maxBytes);
      if (maxBytes >= 1_200) {
        expect(md.startsWith("## cf-oauth-gitops plan")).toBe(true);
        expect(md).toContain("this comment was cut to stay under");
        expect(md.match(/<details/g)?.length ?? 0).toBe(md.match(/<\/details>/g)?.length ?? 0);
      }
    },
  );

  it("does not cut a plan that fits", () => {
    const md = renderMarkdown(richPlan(), { maxBytes: 60_000 });
    expect(md).not.toContain("was cut");
  });
});

describe("renderJson", () => {
  it("is the versioned plan with a stable key order", () => {
    const plan = richPlan();
    const json = renderJson(plan);
    expect(JSON.parse(json)).toEqual(JSON.parse(JSON.stringify(plan)));
    expect(Object.keys(JSON.parse(json) as object).slice(0, 4)).toEqual([
      "version",
      "checksum",
      "summary",
      "safety",
    ]);
    const shuffled = Object.fromEntries(Object.entries(plan).reverse()) as unknown as Plan;
    shuffled.changes = shuffled.changes.map(
      (c) => Object.fromEntries(Object.entries(c).reverse()) as typeof c,
    );
    expect(renderJson(shuffled)).toBe(json);
  });
});

describe("secrets never reach a rendering", () => {
  const CANARY = "canary-s3cr3t-7f1e";

  it("not from live responses, desired fields, or a Secret smuggled into the plan", () => {
    const leaky = { ...live(id("leak"), { client_name: "leak" }), client_secret: CANARY } as LiveClient;
    const entry = desired("web");
    (entry.fields as Record<string, unknown>).client_secret = new Secret(CANARY);
    const plan = richPlan([leaky]);
    const withEntry = planOf({ desired: [entry] });
    // Smuggle Secrets into every kind of string slot a renderer prints.
    const smuggled = structuredClone(plan) as Plan;
    const create = smuggled.changes.find((c) => c.kind === "create")!;
    (create.body as unknown as Record<string, unknown>).client_name = new Secret(CANARY);
    (create as unknown as Record<string, unknown>).client_name = new Secret(CANARY);
    const update = smuggled.changes.find((c) => c.kind === "update")!;
    if (update.kind === "update") update.fields[0]!.new = new Secret(CANARY);
    (smuggled.conflicts[0] as unknown as Record<string, unknown>).reason = new Secret(CANARY);
    (smuggled.safety.violations[0] as unknown as Record<string, unknown>).message = new Secret(CANARY);
    for (const p of [plan, withEntry, smuggled]) {
      for (const out of [
        renderText(p, { color: false }),
        renderText(p, { color: true }),
        renderMarkdown(p),
        renderMarkdown(p, { maxBytes: 2_000 }),
        renderJson(p),
      ]) {
        expect(out).not.toContain(CANARY);
      }
    }
    expect(renderJson(smuggled)).toContain("[REDACTED]");
    expect(renderText(smuggled, { color: false })).toContain("[REDACTED]");
  });
});
