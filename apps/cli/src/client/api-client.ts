/**
 * The CLI's HTTP client for the admin REST API: bearer token, JSON in and out, and problem+json
 * errors turned into one readable line (`HTTP 400: backends[0].weight: Too big ...`).
 */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export interface ApiResponse<T> {
  status: number;
  headers: Headers;
  body: T;
}

export class ApiClient {
  constructor(
    readonly server: string,
    private readonly token: string | undefined,
  ) {}

  async request<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
    const url = this.server.replace(/\/+$/, '') + path;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { ...(this.token ? { authorization: `Bearer ${this.token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ApiError(`cannot reach the admin at ${this.server} (${cause?.code ?? cause?.message ?? (err as Error).message}); set --server or SWITCHBOARD_URL`, 0);
    }
    const text = await res.text();
    const type = res.headers.get('content-type') ?? '';
    const parsed: unknown = type.includes('json') && text ? JSON.parse(text) : text;
    if (!res.ok) throw new ApiError(describeProblem(res.status, parsed, this.token === undefined), res.status);
    return { status: res.status, headers: res.headers, body: parsed as T };
  }
}

function describeProblem(status: number, body: unknown, noToken: boolean): string {
  if (status === 401 && noToken) return 'HTTP 401: no token; set --token or SWITCHBOARD_TOKEN';
  if (body && typeof body === 'object' && 'detail' in body) {
    const p = body as { title?: string; detail: string; errors?: { path: string; message: string }[] };
    const more = p.errors && p.errors.length > 1 ? `; ${p.errors.slice(1).map((e) => `${e.path || '(body)'}: ${e.message}`).join('; ')}` : '';
    return `HTTP ${status} ${p.title ?? ''}: ${p.detail.replace(/ \(and \d+ more\)$/, '')}${more}`.replace(/ +:/, ':');
  }
  return `HTTP ${status}: ${typeof body === 'string' ? body.slice(0, 200) : JSON.stringify(body)}`;
}
