/** Promise helpers over the grpc-js Echo client for end-to-end tests. */
import * as grpc from '@grpc/grpc-js';
import type { EchoRequest, EchoResponse } from '../fixtures/echo-proto';

export type EchoClient = grpc.Client & Record<string, any>;

export interface UnaryResult {
  response?: EchoResponse;
  error?: grpc.ServiceError;
  metadata?: grpc.Metadata;
  trailers?: grpc.Metadata;
}

/** A unary call that resolves with the response or the error (never rejects), plus metadata. */
export function unary(client: EchoClient, req: EchoRequest, metadata = new grpc.Metadata(), options: grpc.CallOptions = {}, method = 'Unary'): Promise<UnaryResult> {
  return new Promise((resolve) => {
    const result: UnaryResult = {};
    const call = client[method](req, metadata, options, (error: grpc.ServiceError | null, response?: EchoResponse) => {
      if (error) result.error = error;
      else result.response = response;
    });
    call.on('metadata', (md: grpc.Metadata) => (result.metadata = md));
    call.on('status', (s: grpc.StatusObject) => {
      result.trailers = s.metadata;
      resolve(result);
    });
  });
}

/** Collects a server stream: every response and the final status. */
export function collect(call: grpc.ClientReadableStream<EchoResponse>): Promise<{ responses: EchoResponse[]; status: grpc.StatusObject }> {
  return new Promise((resolve) => {
    const responses: EchoResponse[] = [];
    call.on('data', (r: EchoResponse) => responses.push(r));
    call.on('error', () => {});
    call.on('status', (status: grpc.StatusObject) => resolve({ responses, status }));
  });
}

export function deadlineIn(ms: number): grpc.CallOptions {
  return { deadline: new Date(Date.now() + ms) };
}
