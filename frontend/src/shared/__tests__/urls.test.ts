import { describe, expect, it } from "vitest";
import { apiUrls, pageUrls, query } from "../urls";

describe("API addresses", () => {
  it("builds each address from its ids", () => {
    expect(apiUrls.caseAnnotation(7)).toBe("/api/cases/7/annotation/");
    expect(apiUrls.promote(3, 2)).toBe("/api/projects/3/model-versions/2/promote/");
    expect(apiUrls.throughputDashboard(3, 30)).toBe("/api/projects/3/dashboard/throughput/?days=30");
    expect(apiUrls.auditEvents(null)).toBe("/api/audit-events/");
    expect(apiUrls.auditEventsCsv(4)).toBe("/api/projects/4/audit-events.csv");
  });

  it("leaves empty query parameters out", () => {
    expect(query({ exclude: "", version: 2 })).toBe("?version=2");
    expect(query({})).toBe("");
    expect(apiUrls.nextCase(1, query({ exclude: "4,5" }))).toBe("/api/projects/1/next-case/?exclude=4%2C5");
    expect(pageUrls.projectAudit(2, query({ object_id: 9 }))).toBe("/projects/2/audit/?object_id=9");
  });
});
