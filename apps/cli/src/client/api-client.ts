/**
 * The CLI's access to the admin REST API: the typed client generated from the OpenAPI document
 * (libs/api-client), plus what a command line needs around it: one readable line for a
 * problem+json error (`HTTP 400: backends[0].weight: Too big ...`) and a hint when the admin
 * cannot be reached or no token was given.
 */
import { createSwitchboardClient, describeProblem, type SwitchboardApi } from '#api-client';

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

interface FetchResult<D> {
  data?: D;
  error?: unknown;
  response: Response;
}

export class ApiClient {
  /** Every route, typed from the OpenAPI document. */
  readonly api: SwitchboardApi;

  constructor(
    readonly server: string,
    private readonly token: string | undefined,
  ) {
    this.api = createSwitchboardClient({ baseUrl: server, token });
  }

  /** Awaits a typed request: its data and response, or an ApiError that says what went wrong. */
  async call<D>(request: Promise<FetchResult<D>>): Promise<{ data: D; response: Response }> {
    let result: FetchResult<D>;
    try {
      result = await request;
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ApiError(`cannot reach the admin at ${this.server} (${cause?.code ?? cause?.message ?? (err as Error).message}); set --server or SWITCHBOARD_URL`, 0);
    }
    const { response } = result;
    if (!response.ok) {
      const message = response.status === 401 && this.token === undefined ? 'HTTP 401: no token; set --token or SWITCHBOARD_TOKEN' : describeProblem(response.status, result.error);
      throw new ApiError(message, response.status);
    }
    return { data: result.data as D, response };
  }
}
