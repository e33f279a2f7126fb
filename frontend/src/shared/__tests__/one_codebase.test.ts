/** The frontend as one codebase (issue 18): every API address comes from shared/urls.ts, the
 * modules every page uses live in shared/, and no page is untyped JavaScript outside src/. */

import { describe, expect, it } from "vitest";

// Every TypeScript source under src/ (tests aside), by its path relative to src/.
const found = import.meta.glob<string>(["/src/**/*.ts", "!/src/**/__tests__/**", "!/src/**/*.d.ts"], {
  query: "?raw",
  import: "default",
  eager: true,
});
const SOURCES = Object.fromEntries(Object.entries(found).map(([path, text]) => [path.replace(/^\/src\//, ""), text]));
const OLD_PAGES = import.meta.glob("/../static/frontend/*.js");

/** The source without its comments (an example address in a comment is no address). */
const code = (text: string): string => text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");

describe("the frontend as one codebase", () => {
  it("reads the sources", () => {
    expect(Object.keys(SOURCES)).toContain("shared/urls.ts");
    expect(Object.keys(SOURCES).length).toBeGreaterThan(30);
  });

  it("takes every API address from shared/urls.ts", () => {
    const hardCoded = Object.entries(SOURCES)
      .filter(([path, text]) => path !== "shared/urls.ts" && /["'`]\/api\//.test(code(text)))
      .map(([path]) => path);
    expect(hardCoded).toEqual([]);
  });

  it("keeps the modules every page uses in shared/, and the pages import them from there", () => {
    for (const name of ["api", "dom", "urls", "page"]) expect(SOURCES).toHaveProperty([`shared/${name}.ts`]);
    for (const name of ["api", "dom"]) expect(SOURCES).not.toHaveProperty([`workspace/${name}.ts`]);
    const pages = Object.keys(SOURCES).filter((path) => /^[a-z]+\/main\.ts$/.test(path) && !path.startsWith("dev/"));
    expect(pages).toEqual(expect.arrayContaining(["models/main.ts", "quarantine/main.ts", "adjudication/main.ts"]));
    for (const page of pages) expect([page, code(SOURCES[page])]).toEqual([page, expect.stringMatching(/from "\.\.\/shared\//)]);
  });

  it("has no page left as JavaScript outside src/", () => {
    expect(Object.keys(OLD_PAGES)).toEqual([]);
    expect(SOURCES).toHaveProperty(["models/main.ts"]);
  });
});
