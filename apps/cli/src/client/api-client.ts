/**
 * The CLI's access to the admin REST API: the typed client generated from the OpenAPI document
 * (libs/api-client), plus what a command line needs around it: one readable line for a
 * problem+json error (`HTTP 400: backends[0].weight: Too big ...`) and a hint when the admin
 * cannot be reached or no token was given.
 */
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { Agent, fetch as undiciFetch } from 'undici';
import { createSwitchboardClient, describeProblem, type SwitchboardApi } from '#api-client';

/** Errors of a certificate the client does not trust (as opposed to a connection that failed). */
const UNTRUSTED = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ALTNAME|HOSTNAME|EXPIRED/;

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
    /** --ca: a PEM file to trust beside the system's roots (an admin with its own CA). */
    private readonly caFile?: string,
  ) {
    let fetchWith: typeof fetch | undefined;
    if (caFile !== undefined) {
      let ca: string;
      try {
        ca = readFileSync(caFile, 'utf8');
      } catch (err) {
        throw new ApiError(`--ca ${caFile}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, 0);
      }
      const dispatcher = new Agent({ connect: { ca: [...rootCertificates, ca] } });
      // undici's own fetch with an agent that trusts the CA; the request is taken apart (openapi-fetch
      // passes a global Request, which is another undici's class) and sent again.
      fetchWith = (async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
        const req = input instanceof Request ? input : new Request(input, init);
        const body = req.body === null ? undefined : Buffer.from(await req.arrayBuffer());
        return (await undiciFetch(req.url, { method: req.method, headers: [...req.headers.entries()], body, signal: req.signal, dispatcher })) as unknown as Response;
      }) as typeof fetch;
    }
    this.api = createSwitchboardClient({ baseUrl: server, token, ...(fetchWith ? { fetch: fetchWith } : {}) });
  }

  /** Awaits a typed request: its data and response, or an ApiError that says what went wrong. */
  async call<D>(request: Promise<FetchResult<D>>): Promise<{ data: D; response: Response }> {
    let result: FetchResult<D>;
    try {
      result = await request;
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (err as Error).message;
      if (UNTRUSTED.test(`${cause?.code ?? ''} ${cause?.message ?? ''}`)) {
        // The admin answered, with a certificate this client does not trust: the server is right, the trust is missing.
        throw new ApiError(`the admin at ${this.server} presented a certificate this client does not trust (${why}); ${this.caFile ? `it is not signed by --ca ${this.caFile}` : 'give its CA with --ca FILE (or SWITCHBOARD_CA)'}`, 0);
      }
      throw new ApiError(`cannot reach the admin at ${this.server} (${why}); set --server or SWITCHBOARD_URL`, 0);
    }
    const { response } = result;
    if (!response.ok) {
      const message = response.status === 401 && this.token === undefined ? 'HTTP 401: no token; set --token or SWITCHBOARD_TOKEN' : describeProblem(response.status, result.error);
      throw new ApiError(message, response.status);
    }
    return { data: result.data as D, response };
  }
}
