/** Thin fetch wrapper for MedLoop's REST API: session cookie, CSRF on writes, JSON errors. */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
  }
}

export type ApiResponse<T> = { status: number; data: T; etag: string | null; headers: Headers };

export class Api {
  constructor(private readonly csrfToken: string) {}

  async request<T>(
    method: string,
    path: string,
    options: { body?: unknown; ifMatch?: string; keepalive?: boolean } = {},
  ): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRFToken"] = this.csrfToken;
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    if (options.ifMatch) headers["If-Match"] = options.ifMatch;
    let response: Response;
    try {
      response = await fetch(path, {
        method,
        headers,
        credentials: "same-origin",
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        keepalive: options.keepalive,
      });
    } catch (err) {
      throw new ApiError(0, "network", `Network error on ${method} ${path}: ${String(err)}`, null);
    }
    const text = await response.text();
    let data: unknown = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = text;
      }
    }
    if (!response.ok) {
      const body = (data ?? {}) as { error?: string; message?: string };
      const message =
        typeof body === "object" && body.message
          ? body.message
          : `${method} ${path} failed with HTTP ${response.status}`;
      throw new ApiError(response.status, body.error ?? `http_${response.status}`, message, data);
    }
    return {
      status: response.status,
      data: data as T,
      etag: response.headers.get("ETag"),
      headers: response.headers,
    };
  }

  /** A binary resource (an image): the blob, the response headers and status (a 202 says
   * the resource is still being made: its blob is the server's JSON), or an ApiError with the
   * server's JSON message. */
  async blob(path: string): Promise<{ blob: Blob; headers: Headers; status: number }> {
    let response: Response;
    try {
      response = await fetch(path, { credentials: "same-origin" });
    } catch (err) {
      throw new ApiError(0, "network", `Network error on GET ${path}: ${String(err)}`, null);
    }
    if (!response.ok) {
      let body: { error?: string; message?: string } = {};
      try {
        body = (await response.json()) as typeof body;
      } catch {
        // not JSON: the generic message below
      }
      throw new ApiError(
        response.status,
        body.error ?? `http_${response.status}`,
        body.message ?? `GET ${path} failed with HTTP ${response.status}`,
        body,
      );
    }
    return { blob: await response.blob(), headers: response.headers, status: response.status };
  }

  get<T>(path: string): Promise<ApiResponse<T>> {
    return this.request<T>("GET", path);
  }
  post<T>(path: string, body?: unknown, ifMatch?: string): Promise<ApiResponse<T>> {
    return this.request<T>("POST", path, { body, ifMatch });
  }
  put<T>(path: string, body?: unknown, ifMatch?: string, keepalive = false): Promise<ApiResponse<T>> {
    return this.request<T>("PUT", path, { body, ifMatch, keepalive });
  }
}
