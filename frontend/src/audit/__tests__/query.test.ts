import { describe, expect, it } from "vitest";
import { filtersFrom, pageLabel, withQuery } from "../query";

describe("the audit page's query", () => {
  it("reads the API's filters from the address and drops blanks and unknown names", () => {
    expect(filtersFrom("?action=auth.*&actor=%20&since=2026-12-01&limit=50&colour=red")).toEqual({
      action: "auth.*",
      since: "2026-12-01",
    });
  });

  it("writes the filters and a page in a fixed order, with no offset on the first page", () => {
    const filters = { object_id: "7", actor: "lena" };
    expect(withQuery("/api/x/", filters, { limit: 50, offset: 0 })).toBe(
      "/api/x/?actor=lena&object_id=7&limit=50",
    );
    expect(withQuery("/api/x/", filters, { limit: 50, offset: 100 })).toBe(
      "/api/x/?actor=lena&object_id=7&limit=50&offset=100",
    );
    expect(withQuery("/api/x.csv", {})).toBe("/api/x.csv");
  });

  it("labels a page by the events it shows", () => {
    expect(pageLabel(0, 50, 73)).toBe("1–50 of 73");
    expect(pageLabel(50, 23, 73)).toBe("51–73 of 73");
    expect(pageLabel(0, 0, 0)).toBe("0 of 0");
  });
});
